"""``timebank sensing ACTION``: devices and gateways, the MQTT bridge, the simulator, retention and counters.

Each action is an entry of ``ACTIONS`` (its help, its arguments, its run), so that another module adds one by
registering it with ``@action``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandError, CommandParser

from timebank.cli.base import TimebankCommand
from timebank.people.models import Member, User
from timebank.regions.selectors import region_get
from timebank.sensing import selectors, services
from timebank.sensing.models import Device, DeviceKind, Gateway, KeyType


@dataclass(frozen=True)
class Action:
    help: str
    arguments: Callable[[CommandParser], None]
    run: Callable[[TimebankCommand, dict[str, Any]], None]


ACTIONS: dict[str, Action] = {}


def action(name: str, help: str, arguments: Callable[[CommandParser], None] = lambda parser: None) -> Any:
    """Register ``timebank sensing <name>``: decorates ``run(command, options)``."""

    def register(run: Callable[[TimebankCommand, dict[str, Any]], None]) -> Callable[..., None]:
        ACTIONS[name] = Action(help, arguments, run)
        return run

    return register


def _user(username: str) -> User:
    user = User.objects.filter(username__iexact=username).first()
    if user is None:
        raise CommandError(f"no user {username!r}")
    return user


def _device(identifier: str) -> Device:
    device = Device.objects.filter(identifier=identifier, revoked_at__isnull=True).first()
    if device is None:
        raise CommandError(f"no live device {identifier!r}")
    return device


def _gateway(identifier: str) -> Gateway:
    gateway = Gateway.objects.filter(identifier=identifier).first()
    if gateway is None:
        raise CommandError(f"no gateway {identifier!r}")
    return gateway


# --- devices ------------------------------------------------------------------------------------------------


def _devices_arguments(parser: CommandParser) -> None:
    sub = parser.add_subparsers(dest="devices_action", required=True)
    register = sub.add_parser(
        "register", help="Register a device a member wears (prints an HMAC secret once)"
    )
    register.add_argument("member", type=int, help="the member's id")
    register.add_argument("identifier", help="what its events carry, e.g. wb-00017")
    register.add_argument("--kind", choices=DeviceKind.values, default=DeviceKind.WRISTBAND)
    register.add_argument("--key-type", choices=KeyType.values, default=KeyType.HMAC)
    register.add_argument("--public-key", default="", help="Ed25519 public key (hex), for --key-type ed25519")
    register.add_argument("--model", default="")
    register.add_argument("--firmware", default="")
    register.add_argument("--by", required=True, help="the staff member registering it (audited)")
    revoke = sub.add_parser("revoke", help="Revoke a device: its events are refused from the next batch")
    revoke.add_argument("identifier")
    revoke.add_argument("--by", required=True, help="the staff member revoking it (audited)")
    listing = sub.add_parser("list", help="List devices: identifier, wearer, battery, last seen")
    listing.add_argument("--all", action="store_true", help="revoked ones too")


@action("devices", "Register, revoke and list the devices members wear", _devices_arguments)
def _devices(command: TimebankCommand, options: dict[str, Any]) -> None:
    what = options["devices_action"]
    if what == "register":
        member = Member.objects.filter(pk=options["member"]).first()
        if member is None:
            raise CommandError(f"no member {options['member']}")
        registered = services.device_register(
            actor=_user(options["by"]),
            member=member,
            identifier=options["identifier"],
            kind=options["kind"],
            key_type=options["key_type"],
            public_key=options["public_key"],
            model=options["model"],
            firmware=options["firmware"],
        )
        command.stdout.write(f"registered {registered.device.identifier} (device {registered.device.pk})")
        if registered.secret:
            command.stdout.write(f"HMAC secret (shown once): {registered.secret}")
    elif what == "revoke":
        device = services.device_revoke(actor=_user(options["by"]), device=_device(options["identifier"]))
        command.stdout.write(f"revoked {device.identifier} at {device.revoked_at:%Y-%m-%d %H:%M:%S}")
    else:
        qs = Device.objects.select_related("member").order_by("identifier", "id")
        if not options["all"]:
            qs = qs.filter(revoked_at__isnull=True)
        for d in qs:
            battery = f"{d.battery_percent}%" if d.battery_percent is not None else "-"
            seen = f"{d.last_seen_at:%Y-%m-%d %H:%M}" if d.last_seen_at else "never"
            state = " REVOKED" if d.revoked_at else ""
            command.stdout.write(
                f"{d.identifier:<20} {d.kind:<10} {d.key_type:<8} member {d.member_id:<6} "
                f"{d.member.name:<12} "
                f"seq {d.last_seq:<8} battery {battery:<5} seen {seen}{state}"
            )


# --- gateways -----------------------------------------------------------------------------------------------


def _gateway_arguments(parser: CommandParser) -> None:
    sub = parser.add_subparsers(dest="gateway_action", required=True)
    create = sub.add_parser("create", help="Create a gateway and print its token once")
    create.add_argument(
        "identifier", help="e.g. st-yandang-1; its MQTT topic is timebank/sensing/<it>/events"
    )
    create.add_argument("--name", required=True)
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--region", help="a station's hub: the region code it serves")
    scope.add_argument("--member", type=int, help="a member's phone app: the member's id")
    create.add_argument("--days", type=int, default=services.GATEWAY_TOKEN_DAYS, help="token validity")
    create.add_argument("--by", required=True, help="the staff member creating it (audited)")
    for name, text in (
        ("revoke", "Revoke a gateway and its token"),
        ("rotate", "Issue a new token, revoke the old"),
    ):
        sub_parser = sub.add_parser(name, help=text)
        sub_parser.add_argument("identifier")
        sub_parser.add_argument("--by", required=True, help="the staff member (audited)")
    sub.add_parser("list", help="List gateways")


@action("gateway", "Create, revoke, rotate the token of, and list gateways", _gateway_arguments)
def _gateways(command: TimebankCommand, options: dict[str, Any]) -> None:
    what = options["gateway_action"]
    if what == "create":
        member = None
        if options["member"] is not None:
            member = Member.objects.filter(pk=options["member"]).first()
            if member is None:
                raise CommandError(f"no member {options['member']}")
        issued = services.gateway_create(
            actor=_user(options["by"]),
            identifier=options["identifier"],
            name=options["name"],
            region=region_get(options["region"]) if options["region"] else None,
            member=member,
            days=options["days"],
        )
        command.stdout.write(f"created gateway {issued.gateway.identifier}")
        command.stdout.write(f"token (shown once; HTTP bearer and MQTT frame key): {issued.token}")
    elif what == "revoke":
        gateway = services.gateway_revoke(actor=_user(options["by"]), gateway=_gateway(options["identifier"]))
        command.stdout.write(f"revoked gateway {gateway.identifier}")
    elif what == "rotate":
        issued = services.gateway_token_rotate(
            actor=_user(options["by"]), gateway=_gateway(options["identifier"])
        )
        command.stdout.write(f"new token for {issued.gateway.identifier} (shown once): {issued.token}")
    else:
        for g in Gateway.objects.select_related("region", "member").order_by("identifier"):
            scope = f"region {g.region.code}" if g.region else f"member {g.member_id}"
            state = " REVOKED" if g.revoked_at else ""
            command.stdout.write(f"{g.identifier:<24} {g.name:<16} {scope}{state}")


# --- the bridge, the simulator, upkeep ----------------------------------------------------------------------


def _bridge_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--url", default=None, help="the broker, mqtt://host:port (TIMEBANK_SENSING_MQTT_URL)"
    )
    parser.add_argument("--window-ms", type=int, default=100, help="gather frames this long into one batch")
    parser.add_argument("--max-events", type=int, default=20_000, help="... or until about this many events")
    parser.add_argument("--client-id", default="timebank-sensing-bridge", help="the persistent MQTT session")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: never)")


@action("bridge", "Store the events gateways publish to Mosquitto (until SIGTERM)", _bridge_arguments)
def _bridge(command: TimebankCommand, options: dict[str, Any]) -> None:
    from timebank.sensing.bridge import Bridge

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    bridge = Bridge(
        url=options["url"],
        client_id=options["client_id"],
        window_ms=options["window_ms"],
        max_events=options["max_events"],
    )
    command.stdout.write(f"bridge: {bridge.host}:{bridge.port}, topic {bridge.topic}")
    stats = bridge.run(seconds=options["seconds"])
    command.stdout.write(f"bridge stopped: {stats.line()}")


def _simulate_arguments(parser: CommandParser) -> None:
    parser.add_argument("--volunteers", type=int, default=10)
    parser.add_argument("--elders", type=int, default=10)
    parser.add_argument("--days", type=float, default=1, help="how far back the streams start (ending now)")
    parser.add_argument("--to", choices=["db", "http", "mqtt"], default="db")
    parser.add_argument("--url", default=None, help="the server (http) or the broker (mqtt)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--region", required=True, help="the community code the simulated people live in")
    parser.add_argument("--prefix", default="sim", help="identifiers: <prefix>-v-0001, <prefix>-e-0001, …")
    parser.add_argument(
        "--by", required=True, help="the staff member registering the simulated people (audited)"
    )


@action(
    "simulate",
    "Simulate volunteers and elders wearing wristbands, and send their events",
    _simulate_arguments,
)
def _simulate(command: TimebankCommand, options: dict[str, Any]) -> None:
    from timebank.sensing import simulator

    summary, result = simulator.simulate(
        actor=_user(options["by"]),
        region=region_get(options["region"]),
        volunteers=options["volunteers"],
        elders=options["elders"],
        days=options["days"],
        to=options["to"],
        url=options["url"],
        seed=options["seed"],
        prefix=options["prefix"],
    )
    command.stdout.write(
        f"simulated {len(summary.visits)} visits, {summary.walk_bys} walk-bys: sent {summary.sent} events "
        f"({summary.genuine} genuine, {summary.forged} forged, {summary.replayed} replayed; "
        f"{summary.dropped} dropped on the way)"
    )
    if isinstance(result, int):
        command.stdout.write(f"published {result} MQTT frames (the bridge counts what became of them)")
    else:
        command.stdout.write(
            f"stored {result.accepted}, refused {result.rejected}, dead letters {result.dead_lettered}"
        )


def _prune_arguments(parser: CommandParser) -> None:
    parser.add_argument("--days", type=int, default=None, help="keep this many days (SENSING_RETENTION_DAYS)")


@action(
    "prune",
    "Forget raw events past retention (drop partitions) and create the coming days' partitions",
    _prune_arguments,
)
def _prune(command: TimebankCommand, options: dict[str, Any]) -> None:
    report = services.events_prune(days=options["days"])
    command.stdout.write(
        f"before {report.cutoff:%Y-%m-%d}: dropped {len(report.partitions_dropped)} partitions, deleted "
        f"{report.events_deleted} events, {report.dead_letters_deleted} dead letters, "
        f"{report.batches_deleted} "
        f"batch counters; created {len(report.partitions_created)} partitions"
    )


def _counts_arguments(parser: CommandParser) -> None:
    parser.add_argument("--days", type=int, default=1, help="over the last N days")
    parser.add_argument("--dead-letters", type=int, default=0, metavar="N", help="also show the last N")


@action("counts", "Accepted and refused events per gateway, day and reason; dead letters", _counts_arguments)
def _counts(command: TimebankCommand, options: dict[str, Any]) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=options["days"])
    rows = selectors.ingest_counts(since=since)
    if not rows:
        command.stdout.write("no batches")
    for row in rows:
        refused = ", ".join(f"{k} {v}" for k, v in sorted(row["rejected"].items())) or "none"
        command.stdout.write(
            f"{row['day']} {row['gateway'] or '(direct)':<24} {row['channel']:<6} "
            f"batches {row['batches']:<6} "
            f"accepted {row['accepted']:<9} dead letters {row['dead_lettered']:<5} refused: {refused}"
        )
    for letter in (
        selectors.dead_letters_recent(limit=options["dead_letters"]) if options["dead_letters"] else []
    ):
        command.stdout.write(
            f"  {letter.received_at:%Y-%m-%d %H:%M:%S} {letter.channel} {letter.source} {letter.reason} "
            f"{letter.detail} {letter.payload[:120]}"
        )


# --- co-presence sessions (sensing.presence) ----------------------------------------------------------------


def _derive_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--no-auto-approve", action="store_true", help="derive and match only; approve nothing automatically"
    )


@action(
    "derive",
    "Derive co-presence sessions from the stored sightings, match them to services, approve where allowed",
    _derive_arguments,
)
def _derive(command: TimebankCommand, options: dict[str, Any]) -> None:
    from timebank.sensing import presence

    r = presence.sessions_derive(auto_approve=not options["no_auto_approve"])
    command.stdout.write(
        f"read {r.sightings} sightings up to event {r.last_event_id}: opened {r.opened} sessions, closed "
        f"{r.closed} and {r.blips} blips; {r.matched} matched to services, {r.candidates} unplanned; "
        f"ignored {r.weak} weak, {r.unpaired} unpaired, {r.no_policy} without a policy, {r.late} late; "
        f"approved automatically: {', '.join(r.approved) or 'none'}"
    )


class Command(TimebankCommand):
    help = "Smart timing: devices and gateways, the MQTT bridge, the simulator, retention and counters."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        for name, entry in ACTIONS.items():
            entry.arguments(sub.add_parser(name, help=entry.help))

    def run(self, *args: Any, action: str, **options: Any) -> None:
        ACTIONS[action].run(self, options)
