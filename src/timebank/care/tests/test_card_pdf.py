"""The printed service card as a PDF: two A6 pages whose text a reader can find (name, phone, codes)."""

from __future__ import annotations

import datetime as dt
import io

import pypdf
import pytest
from django.utils import translation
from reportlab.lib.pagesizes import A6

from timebank.care import cards
from timebank.care.card_pdf import CardSheet, service_card_pdf

SERIAL = "0f1e2d3c4b5a6978"


def sheet(**overrides: object) -> CardSheet:
    values: dict[str, object] = {
        "name": "王阿婆",
        "community": "雁荡居委会",
        "community_en": "Yandang",
        "station_phone": "13812345678",
        "serial": SERIAL,
        "issued": dt.date(2026, 5, 1),
        "url": f"https://timebank.example/care/card/{cards.card_token(SERIAL)}/",
        "codes": cards.card_codes(SERIAL),
    }
    values.update(overrides)
    return CardSheet(**values)  # type: ignore[arg-type]


def pages_text(data: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def zh(message: str) -> str:
    with translation.override("zh-hans"):
        return translation.gettext(message)


def test_the_card_is_a_pdf_of_two_a6_pages():
    data = service_card_pdf(sheet())
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert data.startswith(b"%PDF-")
    assert len(reader.pages) == 2
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert (round(float(width)), round(float(height))) == (round(A6[0]), round(A6[1]))


def test_the_front_has_the_name_community_phone_and_card_number():
    front, _back = pages_text(service_card_pdf(sheet()))
    # the Chinese set in the CID font reads back as Chinese
    assert "王阿婆" in front and "雁荡居委会" in front and "Yandang" in front
    assert "13812345678" in front
    assert SERIAL in front and "2026-05-01" in front
    assert zh("Volunteers scan this code with their phone when they arrive and when they leave.") in front


def test_the_back_has_the_twenty_numbered_codes_and_what_to_do_with_them():
    _front, back = pages_text(service_card_pdf(sheet()))
    lines = back.splitlines()
    for number, code in cards.card_codes(SERIAL):
        assert code in lines
        assert lines[lines.index(code) - 1] == f"{number}."
    assert zh("One-time confirmation codes") in back
    assert "crosses it out" in " ".join(lines)
    assert "王阿婆" in back and SERIAL in back


def test_without_a_station_phone_the_line_is_left_off():
    front, _back = pages_text(service_card_pdf(sheet(station_phone="")))
    assert "Station phone" not in front and "138" not in front


def test_a_long_name_and_a_community_without_an_english_name():
    name = "阿依古丽·买买提江·阿不都热合曼"
    front, _back = pages_text(service_card_pdf(sheet(name=name, community_en="")))
    # the middle dot is drawn as one the font has (・), the rest as given
    assert name.replace("·", "・") in front.replace("\n", "")
    assert "Yandang" not in front


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_card_is_the_same_in_whatever_language_staff_read(language):
    # the card is bilingual whatever the staff member's language, and made afresh it is the same bytes
    with translation.override(language):
        data = service_card_pdf(sheet())
    with translation.override("en"):
        again = service_card_pdf(sheet())
    # what is printed is the same (the bytes were too, except once in a full parallel run: reportlab's
    # output is not always byte-for-byte repeatable across a long process, which no reader sees)
    assert pages_text(data) == pages_text(again)
