"""PINs and codes as people type them: on any keyboard, and not too easy to guess."""

from __future__ import annotations

from itertools import pairwise

FULL_WIDTH_DIGITS = {0xFF10 + n: str(n) for n in range(10)}


def ascii_digits(text: str) -> str:
    """Digits as typed on any keyboard: full-width ones (１２３) read as 123; anything else stays as it is."""
    return (text or "").strip().translate(FULL_WIDTH_DIGITS)


def trivial_pin(pin: str) -> bool:
    """One digit repeated, or a run up or down (1111, 1234, 987654)."""
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    return len(steps) == 1 and steps <= {-1, 0, 1}
