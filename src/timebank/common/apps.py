from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "timebank.common"
    label = "common"
