"""Ingestion: what is accepted and stored, and each reason an event is refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from timebank.common.kinship import Relation
from timebank.people import services as people
from timebank.sensing import ingest, selectors, services, signing
from timebank.sensing.models import DeadLetter, Device, Event, IngestBatch
from timebank.sensing.tests.conftest import Hub, now_ms, wear

pytestmark = pytest.mark.django_db


def send(hub: Hub, events: list[Any], **kwargs: Any) -> ingest.IngestResult:
    return ingest.gateway_events_ingest(gateway_id=hub.gateway.pk, events=events, channel="http", **kwargs)


def test_a_signed_event_is_stored_with_its_peers_and_advances_the_device(hub, band_v, band_e):
    # given
    ts = now_ms()
    # when
    result = send(
        hub, [band_v.event(1, [(band_e.identifier, -58), ("not-registered", -70)], ts=ts, battery=87)]
    )
    # then
    assert result.accepted == 1 and result.rejected == {} and result.dead_lettered == 0
    event = Event.objects.get()
    assert (event.device_id, event.seq, event.gateway_id) == (band_v.device.pk, 1, hub.gateway.pk)
    assert event.peer_devices == [band_e.device.pk] and event.peer_rssi == [-58]
    assert event.observed_at == dt.datetime.fromtimestamp(ts / 1000, dt.UTC)
    device = Device.objects.get(pk=band_v.device.pk)
    assert device.last_seq == 1 and device.battery_percent == 87
    assert device.last_seen_at == event.observed_at


def test_the_session_deriver_reads_sightings_in_order(hub, band_v, band_e, volunteer, elder):
    # given
    send(
        hub,
        [
            band_v.event(1, [(band_e.identifier, -60)]),
            band_v.event(2),
            band_e.event(7, [(band_v.identifier, -61)]),
        ],
    )
    # when
    sightings = selectors.sightings_after(0, 100)
    # then: the heartbeat without peers yields nothing
    assert [(s.observer_member_id, s.peer_member_id, s.rssi) for s in sightings] == [
        (volunteer.pk, elder.pk, -60),
        (elder.pk, volunteer.pk, -61),
    ]
    assert sightings[0].at.tzinfo is not None
    assert selectors.sightings_after(sightings[0].event_id, 100) == sightings[1:]
    assert selectors.sightings_after(0, 1) == sightings[:1]
    assert list(selectors.sightings_stream(0, chunk=1)) == sightings


def test_ed25519_devices_sign_with_their_private_key(yandang_staff, elder, hub):
    # given
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    services.device_register(
        actor=yandang_staff,
        member=elder,
        identifier="bc-00002",
        kind="beacon",
        key_type="ed25519",
        public_key=public,
    )
    good = signing.event_sign(device="bc-00002", seq=1, ts=now_ms(), peers=[], private=private)
    forged = signing.event_sign(
        device="bc-00002", seq=2, ts=now_ms(), peers=[], private=Ed25519PrivateKey.generate()
    )
    # when
    result = send(hub, [good, forged])
    # then
    assert result.accepted == 1 and result.rejected == {"bad_signature": 1}


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e.update(seq=e["seq"] + 1),
        lambda e: e.update(ts=e["ts"] + 1),
        lambda e: e.update(battery=5),
        lambda e: e.update(peers=[["wb-00031", -40]]),
        lambda e: e.update(peers=[]),
        lambda e: e.update(sig="0" * 64),
        lambda e: e.update(sig=e["sig"].upper()),
        lambda e: e.update(sig="签名"),
    ],
    ids=["seq", "ts", "battery", "rssi", "peers dropped", "zero sig", "upper-case sig", "non-ascii sig"],
)
def test_an_altered_event_fails_its_signature(hub, band_v, band_e, tamper):
    # given
    event = band_v.event(1, [(band_e.identifier, -58)], battery=80)
    tamper(event)
    # when
    result = send(hub, [event])
    # then
    assert result.accepted == 0 and result.rejected == {"bad_signature": 1}
    assert not Event.objects.exists()


def test_an_event_signed_with_another_devices_key_is_refused(hub, band_v, band_e):
    event = signing.event_sign(device=band_v.identifier, seq=1, ts=now_ms(), peers=[], secret=band_e.secret)
    assert send(hub, [event]).rejected == {"bad_signature": 1}


def test_unknown_and_revoked_devices_are_refused_revocation_from_the_next_batch(
    hub, band_v, band_e, yandang_staff
):
    # given: the registry is cached by a first batch
    assert send(hub, [band_v.event(1)]).accepted == 1
    stranger = signing.event_sign(device="wb-99999", seq=1, ts=now_ms(), peers=[], secret=b"x" * 32)
    # when
    services.device_revoke(actor=yandang_staff, device=band_v.device)
    result = send(hub, [band_v.event(2), stranger, band_e.event(1, [(band_v.identifier, -50)])])
    # then: the revoked wristband is refused, and no longer counts as a peer
    assert result.rejected == {"revoked_device": 1, "unknown_device": 1}
    assert result.accepted == 1
    assert Event.objects.get(device_id=band_e.device.pk).peer_devices == []


def test_a_revoked_identifier_may_be_registered_again_with_a_new_key(hub, band_v, yandang_staff, volunteer):
    # given
    services.device_revoke(actor=yandang_staff, device=band_v.device)
    # when
    again = wear(yandang_staff, volunteer, band_v.identifier)
    # then: the old key no longer signs for the identifier, the new one does, from sequence 0
    result = send(hub, [band_v.event(5), again.event(0)])
    assert result.accepted == 1 and result.rejected == {"bad_signature": 1}
    assert Event.objects.get().device_id == again.device.pk


def test_replays_are_refused(hub, band_v):
    # given
    assert send(hub, [band_v.event(5)]).accepted == 1
    # when: the same event again, an older one, and a batch with a duplicate and an out-of-order one
    again = send(hub, [band_v.event(5), band_v.event(4)])
    mixed = send(hub, [band_v.event(8), band_v.event(8), band_v.event(7), band_v.event(9)])
    # then
    assert again.accepted == 0 and again.rejected == {"replay": 2}
    assert mixed.accepted == 2 and mixed.rejected == {"replay": 2}
    assert sorted(Event.objects.values_list("seq", flat=True)) == [5, 8, 9]
    assert Device.objects.get(pk=band_v.device.pk).last_seq == 9


def test_a_replayed_whole_batch_is_refused(hub, band_v, band_e):
    batch = [band_v.event(1, [(band_e.identifier, -60)]), band_v.event(2)]
    assert send(hub, batch).accepted == 2
    assert send(hub, batch).rejected == {"replay": 2}
    assert Event.objects.count() == 2


def test_clock_skew_refuses_the_future_and_the_too_old_but_takes_late_events(hub, band_v, settings):
    # given
    settings.SENSING_CLOCK_SKEW_SECONDS = 300
    settings.SENSING_MAX_DELAY_SECONDS = 86400
    now = now_ms()
    # when
    result = send(
        hub,
        [
            band_v.event(1, ts=now - 86_400_000 - 60_000),  # older than a day
            band_v.event(2, ts=now + 301_000),  # too far ahead
            band_v.event(3, ts=now - 86_400_000 + 60_000),  # buffered for most of a day: fine
            band_v.event(4, ts=now + 250_000),  # a fast clock, within tolerance
        ],
    )
    # then
    assert result.accepted == 2 and result.rejected == {"clock_skew": 2}


def test_the_simulated_clock_replaces_the_servers(hub, band_v):
    past = now_ms() - 30 * 86_400_000
    assert send(hub, [band_v.event(1, ts=past)]).rejected == {"clock_skew": 1}
    assert send(hub, [band_v.event(2, ts=past)], now_ms=past + 1000).accepted == 1


@pytest.mark.parametrize(
    ("event", "detail"),
    [
        ("not an object", "missing_field"),
        ({"device": "wb-00017", "seq": 1, "ts": 1}, "missing_field"),
        ({"device": "wb-00017", "seq": "1", "ts": 1, "peers": [], "sig": ""}, "field_type"),
        ({"device": "wb-00017", "seq": -1, "ts": 1, "peers": [], "sig": ""}, "field_type"),
        ({"device": "wb-00017", "seq": 2**63, "ts": 1, "peers": [], "sig": ""}, "field_type"),
        ({"device": "wb-00017", "seq": True, "ts": 1, "peers": [], "sig": ""}, "field_type"),
        ({"device": "wb-00017", "seq": 1, "ts": 1.5, "peers": [], "sig": ""}, "field_type"),
        ({"device": "wb-00017", "seq": 1, "ts": 1, "peers": {}, "sig": ""}, "field_type"),
        ({"device": "wb-00017", "seq": 1, "ts": 1, "peers": [], "sig": "", "battery": 101}, "field_type"),
        ({"device": 17, "seq": 1, "ts": 1, "peers": [], "sig": ""}, "field_type"),
        ({"device": "wb-00017", "seq": 1, "ts": 1, "peers": [["a", -50]] * 65, "sig": ""}, "too_many_peers"),
    ],
)
def test_malformed_events_are_dead_lettered_with_their_reason(hub, band_v, event, detail):
    # when
    result = send(hub, [event, band_v.event(1)])
    # then
    assert result.accepted == 1 and result.dead_lettered == 1 and result.rejected == {}
    letter = DeadLetter.objects.get()
    assert (letter.reason, letter.detail, letter.gateway_id) == ("malformed", detail, hub.gateway.pk)
    assert letter.payload


@pytest.mark.parametrize(
    "peers",
    [
        [["wb-00031"]],
        [["wb-00031", -58, 1]],
        [["wb-00031", "-58"]],
        [[31, -58]],
        [["wb-00031", -200]],
        ["ab"],
    ],
)
def test_malformed_peers_are_dead_lettered(hub, band_v, band_e, peers):
    event = band_v.event(1)
    event["peers"] = peers
    result = send(hub, [event])
    assert result.dead_lettered == 1
    assert DeadLetter.objects.get().detail == "peers"


def test_peer_identifiers_with_separators_are_neither_signed_nor_accepted(hub, band_v):
    # given: an odd advertised name that, signed as is, would read the same as two peers
    odd = "wb-00031:-58,wb-00040"
    with pytest.raises(ValueError):
        band_v.event(1, [(odd, -60)])
    event = band_v.event(1, [("wb-00031", -60)])
    event["peers"] = [[odd, -60]]
    # when
    result = send(hub, [event])
    # then
    assert result.dead_lettered == 1
    assert DeadLetter.objects.get().detail == "peer_identifier"


def test_a_gateway_forwards_only_for_its_region(jinyang_hub, hub, band_v, jinyang_staff, jinyang_elder):
    # given
    theirs = wear(jinyang_staff, jinyang_elder, "wb-70001")
    # when
    result = send(jinyang_hub, [band_v.event(1), theirs.event(1)])
    # then
    assert result.accepted == 1 and result.rejected == {"not_allowed": 1}
    assert send(hub, [band_v.event(1)]).accepted == 1  # the event was not consumed by the refusal


def test_a_phone_forwards_for_its_owner_only(yandang_staff, volunteer, band_v, band_e):
    # given
    issued = services.gateway_create(
        actor=yandang_staff, identifier="ph-wang", name="王的手机", member=volunteer
    )
    # when
    result = ingest.gateway_events_ingest(
        gateway_id=issued.gateway.pk, events=[band_v.event(1), band_e.event(1)], channel="mqtt"
    )
    # then
    assert result.accepted == 1 and result.rejected == {"not_allowed": 1}


def test_a_phone_forwards_for_its_owners_verified_family_too(
    yandang_staff, yandang_clerk, volunteer, elder, band_v, band_e, jinyang_staff, jinyang_elder
):
    # given: the elder is the volunteer's mother, verified by a second staff member; a stranger's band
    bond = people.family_bond_propose(
        actor=yandang_clerk, member=elder, relative=volunteer, relation=Relation.CHILD
    )
    people.family_bond_decide(actor=yandang_staff, bond=bond, approve=True)
    stranger = wear(jinyang_staff, jinyang_elder, "wb-70002")
    issued = services.gateway_create(
        actor=yandang_staff, identifier="ph-wang", name="王的手机", member=volunteer
    )
    # when
    result = ingest.gateway_events_ingest(
        gateway_id=issued.gateway.pk,
        events=[band_v.event(1), band_e.event(1), stranger.event(1)],
        channel="mqtt",
    )
    # then: her own band and her mother's, not the stranger's
    assert result.accepted == 2 and result.rejected == {"not_allowed": 1}


def test_a_revoked_gateway_is_refused(hub, band_v, yandang_staff):
    ingest.gateway_events_ingest(gateway_id=hub.gateway.pk, events=[], channel="http")
    services.gateway_revoke(actor=yandang_staff, gateway=hub.gateway)
    with pytest.raises(ingest.GatewayRefused):
        send(hub, [band_v.event(1)])


def test_counters_add_up_per_gateway_and_reason(hub, band_v):
    # given
    send(hub, [band_v.event(1), band_v.event(1), "junk"])
    send(hub, [band_v.event(2)])
    # when
    counts = selectors.ingest_counts(since=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    # then
    assert len(counts) == 1
    row = counts[0]
    assert (row["gateway"], row["batches"], row["accepted"], row["dead_lettered"]) == (
        "st-yandang-1",
        2,
        2,
        1,
    )
    assert row["rejected"] == {"replay": 1}
    assert IngestBatch.objects.count() == 2


def test_a_batch_body_is_parsed_and_must_name_its_gateway(hub, band_v):
    body = orjson.dumps({"gateway": "st-yandang-1", "events": [band_v.event(1)]})
    result = ingest.body_ingest(
        gateway_id=hub.gateway.pk, gateway_identifier="st-yandang-1", body=body, channel="http"
    )
    assert result.accepted == 1
    with pytest.raises(ingest.GatewayRefused):
        ingest.body_ingest(
            gateway_id=hub.gateway.pk, gateway_identifier="st-other", body=body, channel="http"
        )
    assert DeadLetter.objects.get().reason == "gateway_mismatch"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_a_batch"),
        (b'{"gateway": "st-yandang-1"}', "not_a_batch"),
        (b'{"gateway": 5, "events": []}', "not_a_batch"),
        (b"\xff\xfe", "not_json"),
    ],
)
def test_an_unreadable_batch_is_refused_whole_and_dead_lettered(hub, body, reason):
    with pytest.raises(ingest.MalformedBatch):
        ingest.body_ingest(
            gateway_id=hub.gateway.pk, gateway_identifier="st-yandang-1", body=body, channel="http"
        )
    assert DeadLetter.objects.get().reason == reason


def test_too_many_events_in_one_batch(hub, settings):
    settings.SENSING_MAX_BATCH_EVENTS = 3
    body = orjson.dumps({"gateway": "st-yandang-1", "events": [{}] * 4})
    with pytest.raises(ingest.MalformedBatch):
        ingest.body_ingest(
            gateway_id=hub.gateway.pk, gateway_identifier="st-yandang-1", body=body, channel="http"
        )
    assert DeadLetter.objects.get().reason == "too_many_events"


def test_dead_letters_per_batch_are_bounded(hub):
    result = send(hub, ["junk"] * (ingest.DEAD_LETTERS_PER_BATCH + 5))
    assert result.dead_lettered == ingest.DEAD_LETTERS_PER_BATCH + 5
    assert DeadLetter.objects.count() == ingest.DEAD_LETTERS_PER_BATCH


def test_dead_letter_text_never_holds_a_nul():
    # given: bytes PostgreSQL text refuses, in every field a dead letter keeps
    # when
    letter = ingest.dead_letter_build(
        received_at=dt.datetime.now(dt.UTC),
        channel="mqtt",
        reason="unknown_gateway",
        detail="st\x00x",
        payload=b"a\x00b" + b"\xff",
        source="timebank/sensing/\x00/events",
    )
    # then
    assert "\x00" not in letter.payload + letter.detail + letter.source
    assert letter.payload == "a\\u0000b\ufffd"
    assert letter.detail == "st\\u0000x" and letter.source == "timebank/sensing/\\u0000/events"
    assert ingest.storable("\x00" * 3) == "\\u0000" * 3
