"""Ledger fixtures: funded member accounts in one currency area (Shanghai) and one in another (Beijing)."""

from __future__ import annotations

import itertools

import pytest

from timebank.ledger import services as ledger
from timebank.ledger.models import Account, AccountKind
from timebank.regions import services as regions
from timebank.regions.models import Region

_keys = itertools.count(1)


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


@pytest.fixture
def shanghai(tree: dict[str, Region]) -> Region:
    return tree["310101023001"]


@pytest.fixture
def beijing(db: None) -> Region:
    regions.regions_import_shipped(actor=None, name="other-cities")
    return Region.objects.get(code="110100")


@pytest.fixture
def fund(shanghai: Region) -> Account:
    """The public service fund: it may go negative, by the minutes it has funded."""
    return ledger.system_account(kind=AccountKind.PUBLIC_FUND, region=shanghai)


def funded(fund: Account, region: Region, minutes: int, **limits: int | None) -> Account:
    account = ledger.account_open(kind=AccountKind.MEMBER, region=region, **limits)
    if minutes:
        ledger.transfer(
            idempotency_key=key("fund"),
            source=fund.pk,
            destination=account.pk,
            minutes=minutes,
            kind="funding",
        )
    account.refresh_from_db()
    return account


@pytest.fixture
def alice(fund: Account, shanghai: Region) -> Account:
    return funded(fund, shanghai, 600)


@pytest.fixture
def bob(fund: Account, shanghai: Region) -> Account:
    return funded(fund, shanghai, 0)
