"""Reading CSV files people made by hand: every record with the file line it starts on, for error reports."""

from __future__ import annotations

import csv
import io


def csv_records(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) for each record, a byte-order mark dropped; a quoted cell may span lines, so a
    record's number is the line it starts on."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    records: list[tuple[int, list[str]]] = []
    next_line = 1
    for record in reader:
        records.append((next_line, record))
        next_line = reader.line_num + 1
    return records
