from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CareConfig(AppConfig):
    name = "timebank.care"
    label = "care"
    verbose_name = _("Care services")

    def ready(self) -> None:
        from timebank.care.notices import MESSAGES
        from timebank.notifications.services import messages_register

        messages_register(MESSAGES)
