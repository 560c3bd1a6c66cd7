"""``timebank sensing``: devices, gateways, simulate, prune and counts from the command line."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from timebank.sensing.models import Device, Event, Gateway

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("sensing", *args, stdout=out)
    return out.getvalue()


def test_register_list_and_revoke_a_device(yandang_staff, elder):
    out = run("devices", "register", str(elder.pk), "wb-00100", "--by", "yandang-staff")
    assert "HMAC secret (shown once)" in out
    assert "wb-00100" in run("devices", "list")
    assert "revoked wb-00100" in run("devices", "revoke", "wb-00100", "--by", "yandang-staff")
    assert "wb-00100" not in run("devices", "list")
    assert "REVOKED" in run("devices", "list", "--all")
    assert Device.objects.get().revoked_by == yandang_staff


def test_staff_of_another_district_are_refused_with_the_reason(jinyang_staff, elder):
    with pytest.raises(CommandError, match="permission_denied"):
        run("devices", "register", str(elder.pk), "wb-00100", "--by", "jinyang-staff")


def test_create_rotate_and_revoke_a_gateway(yandang_staff, tree):
    out = run(
        "gateway",
        "create",
        "st-yandang-9",
        "--name",
        "雁荡站",
        "--region",
        "310101023001",
        "--by",
        "yandang-staff",
    )
    assert "token (shown once" in out and "tb_" in out
    assert "new token" in run("gateway", "rotate", "st-yandang-9", "--by", "yandang-staff")
    assert "revoked gateway" in run("gateway", "revoke", "st-yandang-9", "--by", "yandang-staff")
    assert "REVOKED" in run("gateway", "list")
    assert Gateway.objects.get().revoked_at is not None


def test_simulate_into_the_database_then_count_and_prune(yandang_staff, tree):
    out = run(
        "simulate",
        "--volunteers",
        "2",
        "--elders",
        "2",
        "--days",
        "1",
        "--region",
        "310101023001",
        "--by",
        "yandang-staff",
        "--seed",
        "5",
    )
    assert "stored" in out
    assert Event.objects.exists()
    assert "accepted" in run("counts", "--dead-letters", "5")
    out = run("prune", "--days", "30")
    assert "dropped" in out
    assert Event.objects.exists()  # a day old, within 30 days
