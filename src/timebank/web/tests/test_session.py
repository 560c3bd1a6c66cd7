"""Nobody is signed out in the middle of their day: a sign-in lasts eight hours from the last page."""

from __future__ import annotations

import datetime as dt

import time_machine
from django.test import Client
from django.utils import timezone

from timebank.conftest import PASSWORD
from timebank.people.models import User


def test_a_sign_in_lasts_eight_hours_from_the_last_page_seen(client: Client, yandang_staff: User) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.post("/sign-in/", {"identifier": yandang_staff.username, "password": PASSWORD})
    with time_machine.travel(start + dt.timedelta(hours=7), tick=False):
        assert client.get("/console/people/").status_code == 200
    with time_machine.travel(start + dt.timedelta(hours=14), tick=False):
        assert client.get("/console/people/").status_code == 200  # still signed in: 7 h since the last page
    with time_machine.travel(start + dt.timedelta(hours=23), tick=False):
        assert client.get("/console/people/").status_code == 302  # 9 h idle: signed out
