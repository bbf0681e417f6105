"""Result tables: Markdown, CSV and LaTeX, each with the evaluation convention printed under it."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .i18n import tr
from .metrics import convention

__all__ = ["convention_note", "column_label", "markdown_table", "write_tables"]


def convention_note(scale: int) -> str:
    """The evaluation convention line printed under every table."""
    return tr("Evaluation: {convention}.", convention=convention(scale))


def column_label(column: str) -> str:
    """How a table's header shows the column ``column`` (a row key: ``set``, ``method``, ``psnr``...): the key
    itself in English, its name in the student's language otherwise (unknown keys are shown as they are)."""
    labels = {"set": tr("set"), "method": tr("method"), "image": tr("image"), "psnr": tr("psnr"), "ssim": tr("ssim"),
              "lpips": tr("lpips")}
    return labels.get(column, column)


def markdown_table(rows: Sequence[Mapping], columns: Iterable[str], mean_row: bool = True,
                   caption: str | None = None) -> str:
    """A Markdown table of ``rows`` (PSNR with 2 decimals, SSIM with 4), optionally with a mean row."""
    columns = list(columns)
    fmt = {"psnr": "{:.2f}", "ssim": "{:.4f}", "lpips": "{:.4f}"}

    def cell(col, value):
        return fmt.get(col, "{}").format(value) if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(column_label(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(c, r[c]) for c in columns) + " |" for r in rows]
    if mean_row and rows:
        mean = {c: float(np.mean([r[c] for r in rows])) if isinstance(rows[0][c], float) else "" for c in columns}
        mean[columns[0]] = "**" + tr("mean") + "**"
        lines.append("| " + " | ".join(cell(c, mean[c]) for c in columns) + " |")
    if caption:
        lines += ["", caption]
    return "\n".join(lines)


def _csv_text(rows: Sequence[Mapping], fields: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_tables(rows: list[dict], out_dir, scale: int = 4, validation_split: str | None = None) -> dict:
    """``table.md``, ``table.csv``, ``table.tex`` (means per set and method) and ``per_image.csv`` from per-image
    rows (:func:`sr_utils.evaluation.evaluate_methods`). A set named ``validation_split`` (the one that chose
    ``best.pth``) is marked "(validation)" in every table: it is not a test result. Returns the paths and the
    Markdown text."""
    from .evaluation import mean_rows
    from .files import atomic_write_bytes

    def label(set_name: str) -> str:
        return f"{set_name} (validation)" if set_name == validation_split else set_name

    means = [{**r, "set": label(r["set"])} for r in mean_rows(rows)]
    note = convention_note(scale)
    if validation_split and any(r["set"] == validation_split for r in rows):
        note += " " + tr("{split} chose the saved model (best.pth): it is a validation, not a test, result.",
                         split=validation_split)
    columns = ["set", "method", "psnr", "ssim"] + (["lpips"] if means and all("lpips" in r for r in means) else [])
    if "lpips" in columns:
        note += " " + tr("LPIPS (AlexNet v0.1, RGB, same shave): lower is better.")
    md = markdown_table(means, columns, mean_row=False, caption=note)

    def tex(text: str) -> str:
        return text.replace("_", "\\_")

    lines = [r"\begin{tabular}{llrr}", r"\hline", r"Set & Method & PSNR (dB) & SSIM \\", r"\hline"]
    lines += [f"{tex(r['set'])} & {tex(r['method'])} & {r['psnr']:.2f} & {r['ssim']:.4f} \\\\" for r in means]
    lines += [r"\hline", r"\end{tabular}", "% " + note]
    out = Path(out_dir)
    files = {"table.md": md + "\n", "table.csv": _csv_text(means, columns),
             "table.tex": "\n".join(lines) + "\n",
             "per_image.csv": _csv_text(rows, ["set", "method", "image", *columns[2:]])}
    for name, text in files.items():
        atomic_write_bytes(out / name, text.encode())
    return {"md": md, "paths": [out / name for name in files]}
