"""The staff console in Chromium: the station registers a new elder, verifies her priority group and proposes
her son as family; another staff member of the community verifies the bond."""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import expect

from timebank.conftest import make_id_number
from timebank.people.models import BondStatus, PriorityGroup, Relation
from timebank.web.tests.pages import zh


def test_the_station_registers_and_verifies_a_new_elder_and_her_family(site, station, reviewer, son, tree):
    # given the station's people list
    desk = site.sign_in(station, phone=False)
    expect(desk).to_have_url(re.compile(r"/console/people/$"))
    site.look(desk, "register-01-staff-home")

    # when they register 高凤英, 76, of 雁荡, as an elder
    site.submit(desk, desk.get_by_role("link", name=zh("Register a person")))
    site.look(desk, "register-02-register-a-person")
    desk.get_by_label(zh("Name"), exact=True).fill("高凤英")
    desk.get_by_label(zh("Home community")).select_option(label=tree["310101023001"].display_name)
    desk.get_by_label(zh("Mobile number"), exact=True).fill("139 0100 0013")
    desk.get_by_label(zh("Resident ID number")).fill(make_id_number(dt.date(1950, 1, 2), "F", serial=21))
    desk.get_by_label(zh("Elder (receives services)")).check()
    site.submit(desk, desk.get_by_role("button", name=zh("Save")))
    # then her page opens, with her age read from the ID number and no priority group verified yet
    expect(desk).to_have_url(re.compile(r"/console/people/\d+/$"))
    expect(desk.get_by_role("heading", level=1)).to_have_text("高凤英")
    living_alone = desk.locator("tr").filter(has_text=zh(PriorityGroup.LIVING_ALONE.label))
    expect(living_alone.locator("td")).to_have_text("—")
    site.look(desk, "register-03-person-new-elder")

    # when they verify that she lives alone, having visited her
    desk.get_by_label(zh("Priority group")).select_option(label=zh(PriorityGroup.LIVING_ALONE.label))
    desk.get_by_label(zh("How it was verified")).fill("上门核实")
    site.submit(desk, desk.get_by_role("button", name=zh("Verify priority group")))
    # then the group shows as verified by them, with the note
    expect(living_alone.locator("td")).to_contain_text(station.username)
    expect(living_alone.locator("td")).to_contain_text("上门核实")

    # when they propose her son, already registered, as her family
    bond_form = desk.locator("form").filter(has=desk.get_by_role("button", name=zh("Propose bond")))
    bond_form.get_by_label(zh("Relation")).select_option(label=zh(Relation.CHILD.label))
    bond_form.get_by_label(zh("Relative's name")).fill(son.name)
    bond_form.get_by_label(zh("Relative's mobile number")).fill(son.mobile)
    site.submit(desk, bond_form.get_by_role("button", name=zh("Propose bond")))
    site.look(desk)

    # then the community's other staff member finds the bond waiting and verifies it
    other = site.sign_in(reviewer, phone=False)
    site.submit(other, other.get_by_role("link", name=zh("Family bonds"), exact=True))
    waiting = other.locator("tbody tr").filter(has_text="高凤英")
    expect(waiting).to_contain_text(son.name)
    site.look(other, "register-04-bonds-waiting")
    site.submit(other, waiting.get_by_role("button", name=zh("Verify"), exact=True))
    expect(other.locator("main")).to_contain_text(zh("Nothing is waiting."))

    # and her page lists her son as verified family
    desk.reload()
    bond = desk.locator(".bonds li").filter(has_text=son.name)
    expect(bond).to_contain_text(zh(BondStatus.VERIFIED.label))
    site.look(desk)
