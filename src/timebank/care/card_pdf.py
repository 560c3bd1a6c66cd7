"""The elder's service card as a PDF: two A6 pages, printed on both sides of one sheet.

The front has the card's title, the elder's name and community, the number of their station and the QR code
volunteers scan when they arrive and leave; the back has the 20 numbered one-time codes the elder reads out
to confirm a service and crosses out. Every label is in Chinese with English under it in smaller type, each
through the catalogues (``translation.override`` per language), whatever language the staff member reads.

``service_card_pdf`` is a pure function, data in and bytes out: no database, no request, no clock. Chinese is
set in reportlab's built-in CID font STSong-Light, which PDF readers supply, so no font file is shipped.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils import translation
from django.utils.translation import gettext as _
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import A6
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

CJK = "STSong-Light"
LATIN = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"
PAGE_WIDTH, PAGE_HEIGHT = A6
MARGIN = 9 * mm
INNER = PAGE_WIDTH - 2 * MARGIN
GREY = Color(0.3, 0.3, 0.3)
QR_SIZE = 44 * mm
CODE_COLUMNS = 2


@dataclass(frozen=True)
class CardSheet:
    """What one printed card shows."""

    name: str
    community: str
    community_en: str  # "" when the region has no English name
    station_phone: str  # "" when none is on record: the line is left off
    serial: str
    issued: dt.date
    url: str  # what the QR code holds: the card's signed page
    codes: Sequence[tuple[int, str]]


def service_card_pdf(sheet: CardSheet) -> bytes:
    """The card as PDF bytes: the front, then the back."""
    _register_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A6, invariant=True, pageCompression=1, lang="zh-Hans")
    canvas.setTitle(_both(lambda: _("Service card of %(name)s") % {"name": sheet.name})[0])
    canvas.setAuthor(_both(lambda: _("TimeBank"))[0])
    canvas.setCreator(_both(lambda: _("TimeBank"))[0])
    canvas.setSubject(sheet.serial)
    _front(canvas, sheet)
    canvas.showPage()
    _back(canvas, sheet)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# --- the two sides ------------------------------------------------------------------------------------------


def _front(canvas: Canvas, sheet: CardSheet) -> None:
    page = _Page(canvas)
    page.both(_both(lambda: _("TimeBank service card")), 20, 8, bold=True, center=True)
    page.rule()

    page.label(_both(lambda: _("Name")))
    page.line(sheet.name, 26, bold=True, gap=6)

    page.label(_both(lambda: _("Community")))
    page.line(sheet.community, 14, gap=1)
    if sheet.community_en and sheet.community_en != sheet.community:
        page.line(sheet.community_en, 8, color=GREY)
    page.space(5)

    if sheet.station_phone:
        page.label(_both(lambda: _("Station phone")))
        page.line(sheet.station_phone, 20, bold=True, gap=4)

    caption = _both(
        lambda: _("Volunteers scan this code with their phone when they arrive and when they leave.")
    )
    issued = _both(
        lambda: (
            _("Card %(serial)s, issued on %(when)s.")
            % {"serial": sheet.serial, "when": sheet.issued.isoformat()}
        )
    )
    # the QR code stands on its caption, which stands on the card's number at the foot of the page
    foot = MARGIN + page.both_height(issued, 7, 6.5)
    caption_top = foot + page.both_height(caption, 10, 7) + 4
    size = min(QR_SIZE, page.y - caption_top - 4)
    _qr(canvas, sheet.url, (PAGE_WIDTH - size) / 2, caption_top, size)
    page.y = caption_top - 2
    page.both(caption, 10, 7, center=True)
    page.y = foot
    page.both(issued, 7, 6.5, center=True, color=GREY)


def _back(canvas: Canvas, sheet: CardSheet) -> None:
    page = _Page(canvas)
    page.both(_both(lambda: _("One-time confirmation codes")), 16, 8, bold=True, center=True)
    page.space(4)
    instruction = _both(
        lambda: _(
            "To confirm a service, the elder gives the volunteer the next unused code and crosses it out. "
            "Each code works once. Keep this part private."
        )
    )
    page.both(instruction, 10.5, 7)
    page.space(4)

    bottom = MARGIN + 10
    rows = -(-len(sheet.codes) // CODE_COLUMNS)
    row_height = min(26.0, (page.y - bottom) / max(rows, 1))
    column_width = INNER / CODE_COLUMNS
    canvas.setStrokeColor(black)
    canvas.setLineWidth(0.6)
    # numbered down each column, so the next code is always under the last one crossed out
    for index, (number, code) in enumerate(sheet.codes):
        column, row = divmod(index, rows)
        x = MARGIN + column * column_width
        y = page.y - (row + 1) * row_height
        canvas.rect(x, y, column_width, row_height)
        number_size = min(10.0, row_height * 0.4)
        canvas.setFillColor(GREY)
        canvas.setFont(LATIN, number_size)
        canvas.drawRightString(x + 8 * mm, y + (row_height - number_size) / 2 + 1, f"{number}.")
        code_size = min(16.0, row_height * 0.62)
        canvas.setFillColor(black)
        canvas.setFont(LATIN_BOLD, code_size)
        canvas.drawString(x + 10 * mm, y + (row_height - code_size) / 2 + 1.5, code)
    # the back names its card too, in case the two sides part
    page.y = bottom
    page.line(f"{sheet.name}   {sheet.serial}", 7, center=True, color=GREY)


# --- drawing ------------------------------------------------------------------------------------------------

# Marks a Chinese line may not start with: the character before them moves down with them.
NO_LINE_START = frozenset("，。、；：？！）》」』】”’,.;:?!)%")
# The middle dot of names like 买买提·艾力 has no glyph in readers' STSong-Light; the katakana one has.
SUBSTITUTES = {0x00B7: 0x30FB}
TOKENS = re.compile(r"[\x21-\x7e]+|\s+|.", re.DOTALL)


class _Page:
    """A cursor down the page: each line is drawn under the one before."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.y = PAGE_HEIGHT - MARGIN

    def space(self, points: float) -> None:
        self.y -= points

    def line(
        self,
        text: str,
        size: float,
        *,
        bold: bool = False,
        center: bool = False,
        color: Color = black,
        gap: float = 2,
    ) -> None:
        """One line, made smaller until it fits the width (a long name stays on one line)."""
        while size > 6 and _width(text, size, bold) > INNER:
            size -= 0.5
        self.y -= size
        _draw(self.canvas, text, self._x(text, size, bold, center), self.y, size, bold=bold, color=color)
        self.y -= gap + size * 0.3

    def lines(self, text: str, size: float, *, center: bool = False, color: Color = black) -> None:
        """Text wrapped to the width."""
        for part in _wrap(text, size, INNER):
            self.y -= size
            _draw(self.canvas, part, self._x(part, size, False, center), self.y, size, color=color)
            self.y -= size * 0.35

    def both(
        self,
        texts: tuple[str, str],
        size: float,
        english_size: float,
        *,
        bold: bool = False,
        center: bool = False,
        color: Color = black,
    ) -> None:
        """Chinese, then English in smaller grey type (left off while the Chinese catalogue says the same)."""
        chinese, english = texts
        if bold:
            self.line(chinese, size, bold=True, center=center, color=color, gap=1)
        else:
            self.lines(chinese, size, center=center, color=color)
        if english != chinese:
            self.lines(english, english_size, center=center, color=GREY)
        self.y -= 2

    def both_height(self, texts: tuple[str, str], size: float, english_size: float) -> float:
        chinese, english = texts
        height = len(_wrap(chinese, size, INNER)) * size * 1.35 + 2
        if english != chinese:
            height += len(_wrap(english, english_size, INNER)) * english_size * 1.35
        return height

    def label(self, texts: tuple[str, str]) -> None:
        """A field's name: Chinese, then English in smaller type on the same line."""
        chinese, english = texts
        self.y -= 8
        _draw(self.canvas, chinese, MARGIN, self.y, 8, color=GREY)
        if english != chinese:
            _draw(self.canvas, english, MARGIN + _width(chinese, 8, False) + 4, self.y, 6.5, color=GREY)
        self.y -= 3

    def rule(self) -> None:
        self.y -= 2
        self.canvas.setStrokeColor(black)
        self.canvas.setLineWidth(0.8)
        self.canvas.line(MARGIN, self.y, PAGE_WIDTH - MARGIN, self.y)
        self.y -= 4

    @staticmethod
    def _x(text: str, size: float, bold: bool, center: bool) -> float:
        return float(MARGIN + (INNER - _width(text, size, bold)) / 2 if center else MARGIN)


def _runs(text: str) -> list[tuple[str, bool]]:
    """The text cut where it changes between plain Latin and anything else: (run, is Latin)."""
    runs: list[tuple[str, bool]] = []
    for char in text.translate(SUBSTITUTES):
        latin = char.isascii()
        if runs and runs[-1][1] == latin:
            runs[-1] = (runs[-1][0] + char, latin)
        else:
            runs.append((char, latin))
    return runs


def _face(latin: bool, bold: bool) -> str:
    """Helvetica for Latin letters and digits (they read better), the CID font for everything else."""
    if latin:
        return LATIN_BOLD if bold else LATIN
    return CJK


def _width(text: str, size: float, bold: bool) -> float:
    return float(sum(pdfmetrics.stringWidth(run, _face(latin, bold), size) for run, latin in _runs(text)))


def _draw(
    canvas: Canvas, text: str, x: float, y: float, size: float, *, bold: bool = False, color: Color = black
) -> None:
    for run, latin in _runs(text):
        font = _face(latin, bold)
        text_object = canvas.beginText(x, y)
        text_object.setFont(font, size)
        text_object.setFillColor(color)
        if bold and not latin:
            # STSong-Light has no bold: fill and stroke the glyphs for a heavier line
            canvas.setStrokeColor(color)
            canvas.setLineWidth(size / 40)
            text_object.setTextRenderMode(2)
        text_object.textOut(run)
        if bold and not latin:
            text_object.setTextRenderMode(0)
        canvas.drawText(text_object)
        x += pdfmetrics.stringWidth(run, font, size)


def _wrap(text: str, size: float, width: float) -> list[str]:
    """Lines that fit ``width``: Latin breaks between words, Chinese between any two characters, except
    before a closing mark."""
    lines: list[str] = []
    current: list[str] = []
    for token in TOKENS.findall(text):
        if token.isspace():
            if current:
                current.append(" ")
            continue
        if current and _width("".join([*current, token]).rstrip(), size, False) > width:
            carried = [current.pop()] if token[0] in NO_LINE_START and len(current) > 1 else []
            lines.append("".join(current).strip())
            current = carried
        current.append(token)
    if current:
        lines.append("".join(current).strip())
    return lines


def _qr(canvas: Canvas, value: str, x: float, y: float, size: float) -> None:
    widget = QrCodeWidget(value, barLevel="M", barBorder=2)
    left, bottom, right, top = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, x, y)


def _both(message: Callable[[], str]) -> tuple[str, str]:
    """A message in Chinese and in English: ``message`` is called once under each language."""
    texts = []
    for language in ("zh-hans", "en"):
        with translation.override(language):
            texts.append(str(message()))
    return texts[0], texts[1]


_registered = False


def _register_fonts() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK))
        _registered = True


__all__ = ["CardSheet", "service_card_pdf"]
