"""Registering and revoking devices and gateways: who may, what is kept, what is audited."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from timebank.api.models import ApiToken, TokenKind
from timebank.api.services import token_authenticate, token_create
from timebank.audit.models import AuditEvent
from timebank.common.errors import AuthenticationFailed, Conflict, PermissionDenied, ValidationFailed
from timebank.people.crypto import decrypt_text
from timebank.sensing import selectors, services
from timebank.sensing.models import Device, RegistryVersion

pytestmark = pytest.mark.django_db


def test_an_hmac_secret_is_shown_once_and_kept_encrypted(yandang_staff, elder):
    # when
    registered = services.device_register(
        actor=yandang_staff, member=elder, identifier="wb-1", kind="wristband"
    )
    # then
    device = Device.objects.get()
    assert registered.secret and registered.secret not in device.secret_cipher
    assert decrypt_text(device.secret_cipher) == registered.secret
    assert (device.registered_by, device.member, device.last_seq) == (yandang_staff, elder, -1)
    event = AuditEvent.objects.get(event_type="sensing.device.registered")
    assert event.new["identifier"] == "wb-1" and registered.secret not in str(event.new)


def test_every_change_moves_the_registry_version(yandang_staff, elder):
    registered = services.device_register(
        actor=yandang_staff, member=elder, identifier="wb-1", kind="wristband"
    )
    first = RegistryVersion.objects.get().version
    services.device_revoke(actor=yandang_staff, device=registered.device)
    assert RegistryVersion.objects.get().version == first + 1
    assert Device.objects.get().version == first + 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"identifier": "wb 1"}, ValidationFailed),
        ({"identifier": "x" * 65}, ValidationFailed),
        ({"kind": "watch"}, ValidationFailed),
        ({"key_type": "rsa"}, ValidationFailed),
        ({"key_type": "ed25519", "public_key": "abcd"}, ValidationFailed),
        ({"key_type": "ed25519", "public_key": "zz" * 32}, ValidationFailed),
    ],
)
def test_bad_registrations_are_refused(yandang_staff, elder, kwargs, error):
    values = {"identifier": "wb-1", "kind": "wristband", **kwargs}
    with pytest.raises(error):
        services.device_register(actor=yandang_staff, member=elder, **values)
    assert not Device.objects.exists()


def test_one_live_device_per_identifier(yandang_staff, elder, band_v):
    with pytest.raises(Conflict):
        services.device_register(
            actor=yandang_staff, member=elder, identifier=band_v.identifier, kind="beacon"
        )


def test_staff_of_another_district_cannot_register_see_or_revoke(jinyang_staff, elder, band_v):
    with pytest.raises(PermissionDenied):
        services.device_register(actor=jinyang_staff, member=elder, identifier="wb-2", kind="wristband")
    with pytest.raises(PermissionDenied):
        services.device_revoke(actor=jinyang_staff, device=band_v.device)
    assert list(selectors.devices_visible(jinyang_staff)) == []
    assert Device.objects.get(pk=band_v.device.pk).revoked_at is None


def test_revocation_is_audited_once(yandang_staff, band_v):
    services.device_revoke(actor=yandang_staff, device=band_v.device)
    again = services.device_revoke(actor=yandang_staff, device=band_v.device)
    assert again.revoked_at is not None and again.revoked_by == yandang_staff
    assert AuditEvent.objects.filter(event_type="sensing.device.revoked").count() == 1


def test_a_gateway_signs_in_as_itself_with_a_device_token(hub):
    user, token = token_authenticate(hub.token)
    assert user == hub.gateway.user and not user.has_usable_password()
    assert token.kind == TokenKind.DEVICE and token.scopes == ["write"]
    assert selectors.gateway_of_token(token.pk) == hub.gateway
    assert decrypt_text(hub.gateway.token_cipher) == hub.token
    assert AuditEvent.objects.filter(event_type="sensing.gateway.created").count() == 1


def test_a_gateway_serves_a_region_or_a_member_never_both(yandang_staff, tree, elder):
    with pytest.raises(ValidationFailed):
        services.gateway_create(
            actor=yandang_staff, identifier="gw", name="x", region=tree["310101023001"], member=elder
        )
    with pytest.raises(ValidationFailed):
        services.gateway_create(actor=yandang_staff, identifier="gw", name="x")


def test_staff_create_gateways_only_in_their_regions(jinyang_staff, tree, elder):
    with pytest.raises(PermissionDenied):
        services.gateway_create(actor=jinyang_staff, identifier="gw", name="x", region=tree["310101023001"])
    with pytest.raises(PermissionDenied):
        services.gateway_create(actor=jinyang_staff, identifier="gw", name="x", member=elder)


def test_revoking_a_gateway_stops_its_token(yandang_staff, hub):
    services.gateway_revoke(actor=yandang_staff, gateway=hub.gateway)
    with pytest.raises(AuthenticationFailed):
        token_authenticate(hub.token)
    assert AuditEvent.objects.filter(event_type="sensing.gateway.revoked").count() == 1


def test_rotating_a_gateways_token(yandang_staff, hub):
    # a token minted with the gateway's (say, leaked) token dies with it
    minted = token_create(
        actor=hub.gateway.user, user=hub.gateway.user, name="minted", scopes=["write"], within=["write"]
    )
    issued = services.gateway_token_rotate(actor=yandang_staff, gateway=hub.gateway)
    with pytest.raises(AuthenticationFailed):
        token_authenticate(minted.secret)
    with pytest.raises(AuthenticationFailed):
        token_authenticate(hub.token)
    user, _token = token_authenticate(issued.token)
    assert user == hub.gateway.user
    assert ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() == 1


def test_gateways_staff_see(yandang_staff, jinyang_staff, hub, jinyang_hub):
    assert [g.identifier for g in selectors.gateways_visible(yandang_staff)] == ["st-yandang-1"]
    assert [g.identifier for g in selectors.gateways_visible(jinyang_staff)] == ["st-jinyang-1"]


def test_a_public_key_once_registered_is_refused_even_after_its_device_is_revoked(yandang_staff, elder):
    # given an Ed25519 device, revoked (its signed events, replayed to a new device, would start afresh)
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    first = services.device_register(
        actor=yandang_staff, member=elder, identifier="ph-1", kind="phone", key_type="ed25519", public_key=key
    )
    for identifier in ("ph-2", "ph-1"):
        # when: registered again, under another identifier and (once revoked) under the same one
        with pytest.raises(ValidationFailed) as refused:
            services.device_register(
                actor=yandang_staff,
                member=elder,
                identifier=identifier,
                kind="phone",
                key_type="ed25519",
                public_key=key.upper(),
            )
        # then
        assert refused.value.code == "sensing_key_reused"
        assert "public_key" in refused.value.fields
        services.device_revoke(actor=yandang_staff, device=first.device)
    assert Device.objects.count() == 1
