"""``/api/v1`` notifications: my notices page by page, the unread ones, and marking them read."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client

from timebank.api.tests.conftest import bearer, send
from timebank.api.tests.test_people import ids, refused, walk
from timebank.care.tests.conftest import user_of
from timebank.notifications.models import Notification
from timebank.notifications.services import notify
from timebank.people.models import Member, User


def tell(user: User, n: int) -> list[Notification]:
    """``n`` notices that a service was arranged, S000001 first."""
    with transaction.atomic():
        return [
            notify(
                kind="care.assigned",
                params={
                    "number": f"S{i:06d}",
                    "category": "陪伴",
                    "when": "明天 10:00",
                    "volunteer": "李志强",
                },
                users=[user],
            )[0]
            for i in range(1, n + 1)
        ]


def unread(user: User) -> set[int]:
    return set(Notification.objects.filter(recipient=user, read_at__isnull=True).values_list("pk", flat=True))


@pytest.fixture
def elder_user(old_elder: Member) -> User:
    return user_of(old_elder)


def test_my_notifications_page_newest_first_and_say_what_happened(
    client: Client, elder_user: User, helper: Member
) -> None:
    # given
    notices = tell(elder_user, 5)
    tell(user_of(helper), 2)  # someone else's
    headers = bearer(elder_user, elder_user, ("read",))

    # when
    rows = walk(client, "/api/v1/notifications?limit=2", headers, "notifications")

    # then
    assert ids(rows) == [n.pk for n in reversed(notices)]
    assert rows[0]["kind"] == "care.assigned" and "S000005" in rows[0]["title"]
    assert rows[0]["params"]["number"] == "S000005" and rows[0]["read_at"] is None
    assert client.get("/api/v1/notifications", **headers).json()["unread_count"] == 5


def test_i_mark_some_or_all_read(client: Client, elder_user: User, helper: Member) -> None:
    # given
    mine = tell(elder_user, 3)
    theirs = tell(user_of(helper), 1)
    headers = bearer(elder_user, elder_user)

    # when I mark one of mine and someone else's
    marked = send(client, "/api/v1/notifications/read", {"ids": [mine[0].pk, theirs[0].pk]}, headers)

    # then only mine is read
    assert marked.status_code == 200 and marked.json() == {"marked": 1, "unread_count": 2}
    assert unread(elder_user) == {mine[1].pk, mine[2].pk}
    assert unread(user_of(helper)) == {theirs[0].pk}
    left = walk(client, "/api/v1/notifications?unread=true", headers, "notifications")
    assert ids(left) == [mine[2].pk, mine[1].pk]

    # and when I mark all
    everything = send(client, "/api/v1/notifications/read", {"all": True}, headers)
    assert everything.json() == {"marked": 2, "unread_count": 0}
    assert unread(elder_user) == set() and unread(user_of(helper)) == {theirs[0].pk}
    assert walk(client, "/api/v1/notifications?unread=true", headers, "notifications") == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"all": False},
        {"ids": []},
        {"ids": [1], "all": True},
        {"ids": ["one"]},
        {"ids": [0]},
        {"ids": [2**70]},
        {"all": "everything"},
        {"all": True, "now": True},
        [1, 2],
    ],
)
def test_a_bad_mark_is_a_422_and_marks_nothing(client: Client, elder_user: User, body: object) -> None:
    tell(elder_user, 2)
    refused(send(client, "/api/v1/notifications/read", body, bearer(elder_user, elder_user)), 422)
    assert len(unread(elder_user)) == 2


def test_a_read_token_marks_nothing(client: Client, elder_user: User) -> None:
    tell(elder_user, 2)
    headers = bearer(elder_user, elder_user, ("read",))
    refused(send(client, "/api/v1/notifications/read", {"all": True}, headers), 403, "api_scope_missing")
    assert len(unread(elder_user)) == 2


def test_bad_list_parameters_are_a_422(client: Client, elder_user: User) -> None:
    headers = bearer(elder_user, elder_user)
    for query in ("unread=perhaps", "limit=0", "cursor=***"):
        refused(client.get(f"/api/v1/notifications?{query}", **headers), 422)
