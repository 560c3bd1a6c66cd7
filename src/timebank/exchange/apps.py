from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExchangeConfig(AppConfig):
    name = "timebank.exchange"
    label = "exchange"
    verbose_name = _("Exchange")

    def ready(self) -> None:
        from timebank.exchange.notices import MESSAGES
        from timebank.notifications.services import messages_register

        messages_register(MESSAGES)
