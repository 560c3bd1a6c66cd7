from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "timebank.web"
    label = "web"
