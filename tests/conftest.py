from timebank.conftest import *  # noqa: F403
