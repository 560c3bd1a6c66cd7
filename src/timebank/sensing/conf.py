"""The sensing package's settings, each with a default and a ``TIMEBANK_<NAME>`` environment variable, so
that ``config/settings`` need name only the ones it changes."""

from __future__ import annotations

from django.conf import settings

from timebank.config.env import env_int, env_str

DEFAULTS: dict[str, int] = {
    # an event may be stamped at most this far in the future (device clocks drift)
    "SENSING_CLOCK_SKEW_SECONDS": 300,
    # ... and at most this far in the past: gateways forward what they buffered while offline
    "SENSING_MAX_DELAY_SECONDS": 3 * 86400,
    # raw events, dead letters and the ingestion log are kept this long
    "SENSING_RETENTION_DAYS": 90,
    # events received less than this long ago are not read yet (see selectors: the horizon)
    "SENSING_SETTLE_SECONDS": 60,
    # the most events one batch (an HTTP body or an MQTT frame) may carry
    "SENSING_MAX_BATCH_EVENTS": 10_000,
    # daily partitions are created this many days ahead (PostgreSQL)
    "SENSING_PARTITION_DAYS_AHEAD": 7,
    # the registry cache is reloaded whole this often (family bonds and home regions change elsewhere)
    "SENSING_REGISTRY_RELOAD_SECONDS": 300,
    # an open session stays open this long past its gap, for sightings that arrive late or from a device
    # whose clock is behind; at least SENSING_CLOCK_SKEW_SECONDS
    "SENSING_SESSION_LATENESS_SECONDS": 600,
    # `timebank serve` derives co-presence sessions (and approves what the sensors agree with) this often;
    # 0: never (production runs `timebank sensing derive` from a timer)
    "SENSING_DERIVE_EVERY_SECONDS": 30,
}


def sensing_setting(name: str) -> int:
    value = getattr(settings, name, None)
    if value is None:
        value = env_int(f"TIMEBANK_{name}", DEFAULTS[name])
    return int(value)


def mqtt_url() -> str:
    """Where the bridge and the simulator find the broker: ``mqtt://host:port``."""
    value = getattr(settings, "SENSING_MQTT_URL", None)
    return str(value or env_str("TIMEBANK_SENSING_MQTT_URL", "mqtt://127.0.0.1:1883"))
