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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from django.utils import translation
from django.utils.translation import gettext as _
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.colors import Color, black
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A6
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph

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
    _front(canvas, sheet)
    canvas.showPage()
    _back(canvas, sheet)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# --- the two sides ------------------------------------------------------------------------------------------


def _front(canvas: Canvas, sheet: CardSheet) -> None:
    page = _Page(canvas)
    title_zh, title_en = _both(lambda: _("TimeBank service card"))
    page.line(title_zh, 20, bold=True, center=True)
    page.line(title_en, 8, center=True, color=GREY, gap=3)
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

    caption_zh, caption_en = _both(
        lambda: _("Volunteers scan this code with their phone when they arrive and when they leave.")
    )
    issued_zh, issued_en = _both(
        lambda: _("Card %(serial)s, issued on %(when)s.")
        % {"serial": sheet.serial, "when": sheet.issued.isoformat()}
    )
    # the QR code sits above its caption and the card's number, at the foot of the page
    foot = MARGIN
    foot += page.paragraph_height(issued_en, 6.5) + page.paragraph_height(issued_zh, 7) + 4
    caption_top = foot + page.paragraph_height(caption_en, 7) + page.paragraph_height(caption_zh, 10) + 2
    size = min(QR_SIZE, page.y - caption_top - 4)
    _qr(canvas, sheet.url, (PAGE_WIDTH - size) / 2, caption_top + 2, size)
    page.y = caption_top
    page.paragraph(caption_zh, 10, center=True)
    page.paragraph(caption_en, 7, center=True, color=GREY)
    page.y = foot
    page.paragraph(issued_zh, 7, center=True, color=GREY)
    page.paragraph(issued_en, 6.5, center=True, color=GREY)


def _back(canvas: Canvas, sheet: CardSheet) -> None:
    page = _Page(canvas)
    heading_zh, heading_en = _both(lambda: _("One-time confirmation codes"))
    page.line(heading_zh, 16, bold=True, center=True)
    page.line(heading_en, 8, center=True, color=GREY, gap=4)
    how_zh, how_en = _both(
        lambda: _(
            "To confirm a service, the elder gives the volunteer the next unused code and crosses it out. "
            "Each code works once. Keep this part private."
        )
    )
    page.paragraph(how_zh, 10.5, leading=14)
    page.paragraph(how_en, 7, color=GREY, gap=6)

    footer = f"{sheet.name} · {sheet.serial}"
    bottom = MARGIN + 10
    rows = -(-len(sheet.codes) // CODE_COLUMNS)
    if not rows:
        return
    row_height = min(26.0, (page.y - bottom) / rows)
    column_width = INNER / CODE_COLUMNS
    canvas.setStrokeColor(black)
    canvas.setLineWidth(0.6)
    # numbered down each column, so the next code is always below the last one crossed out
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
    page.y = bottom
    page.line(footer, 7, center=True, color=GREY)


# --- drawing ------------------------------------------------------------------------------------------------


class _Page:
    """A cursor down the page: each line or paragraph is drawn under the one before."""

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
        """One line of text, made smaller until it fits the width (a long name stays on one line)."""
        font = _font(text, bold)
        while size > 6 and pdfmetrics.stringWidth(text, font, size) > INNER:
            size -= 0.5
        self.y -= size
        text_object = self.canvas.beginText()
        text_object.setFont(font, size)
        text_object.setFillColor(color)
        if bold and font == CJK:
            # STSong-Light has no bold: fill and stroke the glyphs for a heavier line
            text_object.setTextRenderMode(2)
            self.canvas.setStrokeColor(color)
            self.canvas.setLineWidth(size / 40)
        width = pdfmetrics.stringWidth(text, font, size)
        text_object.setTextOrigin(MARGIN + (INNER - width) / 2 if center else MARGIN, self.y)
        text_object.textLine(text)
        text_object.setTextRenderMode(0)
        self.canvas.drawText(text_object)
        self.y -= gap + size * 0.25

    def label(self, texts: tuple[str, str]) -> None:
        """A field's name: Chinese, then English in smaller type."""
        chinese, english = texts
        self.y -= 8
        self.canvas.setFillColor(GREY)
        self.canvas.setFont(_font(chinese, False), 8)
        self.canvas.drawString(MARGIN, self.y, chinese)
        after = MARGIN + pdfmetrics.stringWidth(chinese, _font(chinese, False), 8) + 4
        self.canvas.setFont(_font(english, False), 6.5)
        self.canvas.drawString(after, self.y, english)
        self.y -= 3

    def rule(self) -> None:
        self.y -= 2
        self.canvas.setStrokeColor(black)
        self.canvas.setLineWidth(0.8)
        self.canvas.line(MARGIN, self.y, PAGE_WIDTH - MARGIN, self.y)
        self.y -= 4

    def paragraph(
        self,
        text: str,
        size: float,
        *,
        leading: float | None = None,
        center: bool = False,
        color: Color = black,
        gap: float = 2,
    ) -> None:
        """Text wrapped to the width: Chinese may break between any two characters."""
        flowable = Paragraph(escape(text), _style(text, size, leading, center, color))
        _width, height = flowable.wrap(INNER, PAGE_HEIGHT)
        flowable.drawOn(self.canvas, MARGIN, self.y - height)
        self.y -= height + gap

    def paragraph_height(self, text: str, size: float) -> float:
        _width, height = Paragraph(escape(text), _style(text, size, None, True, black)).wrap(
            INNER, PAGE_HEIGHT
        )
        return float(height) + 2


def _style(text: str, size: float, leading: float | None, center: bool, color: Color) -> ParagraphStyle:
    font = _font(text, False)
    return ParagraphStyle(
        "card",
        fontName=font,
        fontSize=size,
        leading=leading or size * 1.3,
        alignment=TA_CENTER if center else 0,
        textColor=color,
        wordWrap="CJK" if font == CJK else None,
    )


def _qr(canvas: Canvas, value: str, x: float, y: float, size: float) -> None:
    widget = QrCodeWidget(value, barLevel="M", barBorder=2)
    left, bottom, right, top = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, x, y)


def _font(text: str, bold: bool) -> str:
    """Helvetica for plain Latin text (it reads better), the CID font for anything else."""
    if text.isascii():
        return LATIN_BOLD if bold else LATIN
    return CJK


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
