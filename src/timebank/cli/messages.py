"""``make messages``: extract the catalogues, fill the English one from the source, compile both.

English is the source language, so its catalogue says each message as written; Simplified Chinese is
translated by people. Untranslated Chinese entries are listed so nobody ships them by accident.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polib

PACKAGE = Path(__file__).resolve().parents[1]
IGNORE = ["tests/*", "*/tests/*", "conftest.py"]


def main() -> int:
    command = [
        sys.executable,
        "-m",
        "timebank.cli.main",
        "makemessages",
        "-l",
        "zh_Hans",
        "-l",
        "en",
        "--no-obsolete",
        "--add-location",
        "file",
    ]
    for pattern in IGNORE:
        command += ["--ignore", pattern]
    subprocess.run(command, cwd=PACKAGE, check=True)
    english = polib.pofile(str(PACKAGE / "locale/en/LC_MESSAGES/django.po"))
    for entry in english:
        if entry.msgid_plural:
            entry.msgstr_plural = {0: entry.msgid, 1: entry.msgid_plural}
        else:
            entry.msgstr = entry.msgid
        if "fuzzy" in entry.flags:
            entry.flags.remove("fuzzy")
    english.metadata["Language"] = "en"
    english.metadata["Plural-Forms"] = "nplurals=2; plural=(n != 1);"
    english.metadata["Content-Type"] = "text/plain; charset=UTF-8"
    english.save()
    chinese = polib.pofile(str(PACKAGE / "locale/zh_Hans/LC_MESSAGES/django.po"))
    missing = chinese.untranslated_entries() + chinese.fuzzy_entries()
    for entry in missing:
        print(f"untranslated zh_Hans: {entry.msgid!r}")
    subprocess.run([sys.executable, "-m", "timebank.cli.main", "compilemessages"], cwd=PACKAGE, check=True)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
