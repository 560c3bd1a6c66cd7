from django.contrib.staticfiles.management.commands.runserver import Command as RunServer


class Command(RunServer):
    help = "Serve TimeBank at http://127.0.0.1:8000 (the embedded server; use a WSGI server in production)."
    default_addr = "127.0.0.1"
    default_port = "8000"
