"""``timebank exchange``: guarantee funds, their coverage, and the expiry of uncollected goods."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from timebank.exchange.models import GuaranteeFund


def test_recording_a_guarantee_and_reading_its_coverage(operator, old_elder, tree):
    out = StringIO()
    call_command("exchange", "guarantee", "310000", "3000", "30", "--by", operator.username, stdout=out)
    assert "guarantee fund of 310000: ¥3,000.00" in out.getvalue()
    fund = GuaranteeFund.objects.get()
    assert (fund.value_fen, fund.fen_per_hour) == (300_000, 3000)
    out = StringIO()
    call_command("exchange", "coverage", "310101023001", stdout=out)
    # 王阿婆 holds 10 hours; ¥3,000 at ¥30 an hour buys 100 hours
    assert out.getvalue().strip().endswith("coverage 1000%")


def test_bad_amounts_and_missing_rights_are_refused(operator, station, tree):
    with pytest.raises(CommandError, match="value: an amount in yuan"):
        call_command(
            "exchange", "guarantee", "310000", "3,000", "30", "--by", operator.username, stdout=StringIO()
        )
    with pytest.raises(CommandError, match="permission_denied"):
        call_command(
            "exchange", "guarantee", "310000", "3000", "30", "--by", station.username, stdout=StringIO()
        )
    out = StringIO()
    call_command("exchange", "tick", stdout=out)
    assert out.getvalue().strip() == "expired 0 uncollected orders"
