from django.apps import AppConfig


class CliConfig(AppConfig):
    name = "timebank.cli"
    label = "cli"
