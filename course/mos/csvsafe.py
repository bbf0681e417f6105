"""CSV files that a spreadsheet opens as data, never as formulas, written atomically.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by Excel,
LibreOffice and Google Sheets (``=HYPERLINK(…)`` in a student's folder name would become a live link). Such text is
prefixed with an apostrophe, as OWASP advises; numbers (``-0.5``) are written as numbers.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

__all__ = ["safe_cell", "write_csv"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """``value`` unchanged when it is a number, a bool or None; text starting with a formula trigger gets a leading
    apostrophe."""
    if value is None or isinstance(value, (bool, int, float)):
        return "" if isinstance(value, float) and math.isnan(value) else value
    text = str(value)
    if text.startswith(_TRIGGERS):
        try:
            float(text)  # a number written as text ("-0.5") stays a number
            return text
        except ValueError:
            return "'" + text
    return text


def write_csv(path: Path, header: list[str], rows) -> Path:
    """Write ``rows`` (lists, or dicts keyed by ``header``) under ``header`` to ``path``, every cell made safe, in one
    atomic replace (:func:`sr_utils.files.atomic_write_bytes`)."""
    from sr_utils.files import atomic_write_bytes

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([safe_cell(h) for h in header])
    for row in rows:
        values = [row.get(h, "") for h in header] if isinstance(row, dict) else list(row)
        w.writerow([safe_cell(v) for v in values])
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))
    return Path(path)
