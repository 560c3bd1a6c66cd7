"""Both catalogues are complete, in step with the source, and compiled."""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "timebank"
LOCALES = ["zh_Hans", "en"]
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def catalogue(locale: str) -> polib.POFile:
    return polib.pofile(str(PACKAGE / "locale" / locale / "LC_MESSAGES" / "django.po"))


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(locale):
    # given the committed catalogue / then nothing is missing, fuzzy or obsolete
    po = catalogue(locale)
    assert po.untranslated_entries() == []
    assert po.fuzzy_entries() == []
    assert po.obsolete_entries() == []


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_their_placeholders(locale):
    for entry in catalogue(locale).translated_entries():
        expected = sorted(PLACEHOLDER.findall(entry.msgid))
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            assert sorted(set(PLACEHOLDER.findall(text))) == sorted(set(expected)), entry.msgid


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalogue_matches_the_source(locale):
    # given the .mo shipped beside the .po / then every message reads back as translated
    mo_path = PACKAGE / "locale" / locale / "LC_MESSAGES" / "django.mo"
    with mo_path.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for entry in catalogue(locale).translated_entries():
        if entry.msgid_plural:
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 1) == entry.msgstr_plural[0], (
                entry.msgid
            )
        elif entry.msgctxt:
            assert compiled.pgettext(entry.msgctxt, entry.msgid) == entry.msgstr, entry.msgid
        else:
            assert compiled.gettext(entry.msgid) == entry.msgstr, entry.msgid


def test_catalogue_holds_every_string_in_the_source(tmp_path):
    # given a fresh extraction from the source / then the committed catalogue has exactly those messages
    if shutil.which("xgettext") is None:
        pytest.fail("gettext is not installed (apt-get install gettext); .ci/run installs it")
    copy = tmp_path / "timebank"
    shutil.copytree(
        PACKAGE, copy, ignore=shutil.ignore_patterns("locale", "__pycache__", "tests", "conftest.py")
    )
    (copy / "locale").mkdir()
    subprocess.run(
        [sys.executable, "-m", "timebank.cli.main", "makemessages", "-l", "en", "--no-location"],
        cwd=copy,
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "TIMEBANK_VAR_DIR": str(tmp_path)},
    )
    fresh = {(e.msgctxt, e.msgid) for e in polib.pofile(str(copy / "locale/en/LC_MESSAGES/django.po"))}
    committed = {(e.msgctxt, e.msgid) for e in catalogue("en")}
    assert fresh - committed == set(), "run `make messages` and translate the new strings"
    assert committed - fresh == set(), "run `make messages` to drop strings no longer in the source"
