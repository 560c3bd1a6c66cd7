"""The policy's smart-timing rules: every preset sets them, a policy without them takes the defaults, and bad
values are refused naming the field, like any other rule."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from timebank.audit.models import AuditEvent
from timebank.common.errors import ValidationFailed
from timebank.regions.models import Policy
from timebank.regions.services import PRESETS, policy_create, policy_preset_rules
from timebank.regions.tests.test_policies import JAN_1, counts, valid_rules

SENSING = [
    "sensing_rssi_threshold_dbm",
    "sensing_merge_gap_seconds",
    "sensing_min_duration_seconds",
    "sensing_tolerance_minutes",
    "sensing_auto_approve",
]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_sets_the_smart_timing_rules(preset):
    rules = policy_preset_rules(preset)
    assert set(SENSING) <= set(rules)
    assert rules["sensing_rssi_threshold_dbm"] < 0 < rules["sensing_merge_gap_seconds"]
    assert rules["sensing_auto_approve"] is (preset == "paper-tiered")  # the paper's proposal trusts them


def test_a_policy_without_them_takes_the_defaults(tree):
    policy = policy_create(actor=None, region=tree["310101"], effective_from=JAN_1, rules=valid_rules())
    policy.refresh_from_db()
    assert [getattr(policy, name) for name in SENSING] == [-75, 120, 300, 10, False]


def test_they_are_stored_and_audited(tree):
    policy = policy_create(
        actor=None,
        region=tree["310101"],
        effective_from=JAN_1,
        rules=valid_rules(
            sensing_rssi_threshold_dbm=-68,
            sensing_merge_gap_seconds=90,
            sensing_min_duration_seconds=600,
            sensing_tolerance_minutes=5,
            sensing_auto_approve=True,
        ),
    )
    policy.refresh_from_db()
    assert [getattr(policy, name) for name in SENSING] == [-68, 90, 600, 5, True]
    created = AuditEvent.objects.get(event_type="policy.created", subject_id=str(policy.pk))
    assert [created.new[name] for name in SENSING] == [-68, 90, 600, 5, True]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"sensing_rssi_threshold_dbm": 5}, "sensing_rssi_threshold_dbm", id="rssi-above-zero"),
        pytest.param({"sensing_rssi_threshold_dbm": -128}, "sensing_rssi_threshold_dbm", id="rssi-too-low"),
        pytest.param({"sensing_rssi_threshold_dbm": "-70"}, "sensing_rssi_threshold_dbm", id="rssi-string"),
        pytest.param({"sensing_merge_gap_seconds": 0}, "sensing_merge_gap_seconds", id="gap-zero"),
        pytest.param({"sensing_merge_gap_seconds": 3601}, "sensing_merge_gap_seconds", id="gap-over-an-hour"),
        pytest.param({"sensing_min_duration_seconds": -1}, "sensing_min_duration_seconds", id="min-negative"),
        pytest.param({"sensing_tolerance_minutes": 1.5}, "sensing_tolerance_minutes", id="tolerance-float"),
        pytest.param({"sensing_auto_approve": 1}, "sensing_auto_approve", id="switch-int"),
    ],
)
def test_bad_values_are_refused_naming_the_field(tree, changes, field):
    before = counts()
    with pytest.raises(ValidationFailed) as caught:
        policy_create(actor=None, region=tree["310000"], effective_from=JAN_1, rules=valid_rules(**changes))
    assert caught.value.code == "policy_invalid"
    assert list(caught.value.fields) == [field]
    assert counts() == before


def test_the_database_refuses_a_positive_threshold_written_behind_the_services_back(tree):
    policy = policy_create(actor=None, region=tree["310101"], effective_from=JAN_1, rules=valid_rules())
    with pytest.raises(IntegrityError), transaction.atomic():
        Policy.objects.filter(pk=policy.pk).update(sensing_rssi_threshold_dbm=3)
