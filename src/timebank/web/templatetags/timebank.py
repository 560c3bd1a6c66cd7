from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import get_language

from timebank.audit.models import AuditEvent
from timebank.common.units import format_minutes
from timebank.exchange.models import Product
from timebank.ledger.models import TransactionKind

register = template.Library()


@register.filter
def changes(event: AuditEvent) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for each value an audit event records; a missing side is None."""
    old = event.old or {}
    new = event.new or {}
    keys = list(dict.fromkeys([*old, *new]))
    return [(key, old.get(key), new.get(key)) for key in keys]


@register.filter
def minutes(value: int) -> str:
    """Integer minutes as people read them: "3 小时 30 分" / "3 h 30 min"."""
    return format_minutes(int(value))


@register.filter
def signed_minutes(value: int) -> str:
    """A movement of minutes with its direction: "+1 h" / "-30 min"."""
    return ("+" if value > 0 else "") + format_minutes(int(value))


@register.filter
def transaction_kind(value: str) -> str:
    return str(TransactionKind(value).label) if value in TransactionKind.values else value


@register.filter
def star_glyphs(stars: int, out_of: int = 5) -> str:
    """A star level drawn as filled and empty stars: 2 → "★★☆☆☆"."""
    stars = max(int(stars), 0)
    return "★" * stars + "☆" * max(int(out_of) - stars, 0)


@register.filter
def product_name(product: Product) -> str:
    """A product's name in the reader's language (the English name when there is one)."""
    if (get_language() or "").startswith("en") and product.name_en:
        return product.name_en
    return product.name


@register.filter
def yuan(fen: int) -> str:
    """An amount in fen as yuan: 123456 → "1,234.56"."""
    whole, cents = divmod(int(fen), 100)
    return f"{whole:,}.{cents:02d}"
