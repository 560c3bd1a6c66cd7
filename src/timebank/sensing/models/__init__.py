"""Smart timing: devices and gateways, the signed events they send (``devices``), and the co-presence sessions
derived from them and matched to services (``sessions``)."""

from timebank.sensing.models.devices import *  # noqa: F403
from timebank.sensing.models.sessions import *  # noqa: F403
