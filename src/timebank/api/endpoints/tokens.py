"""(endpoints added here)"""
