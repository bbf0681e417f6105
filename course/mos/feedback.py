"""What each student is told about the human evaluation: their own MOS, its interval, the controls' MOS and their
points — nothing about any other student.

The text goes (1) to ``<results>/students/<student>.md``, one file per student, and (2) with ``results
--to-gradebook`` into the comment of the student's ``human_evaluation`` cell in the gradebook, which nbgrader's
``generate_feedback`` renders in that student's feedback page only. Every sentence is written in English below and
translated by the MOS catalogue (``course/mos/locales/zh_CN.py``, :mod:`course.mos.i18n`); ``--language`` (default:
the study's) chooses ``en`` or ``zh-CN``.
"""
from __future__ import annotations

import math
from pathlib import Path

from course.mos.i18n import LANGUAGES, tr

__all__ = ["student_text", "write_student_files", "MARK_BEGIN", "MARK_END", "merge_comment"]

#: Lines around the kit's text in a gradebook comment, so a grader's own words stay untouched.
MARK_BEGIN, MARK_END = "<!-- human-evaluation -->", "<!-- /human-evaluation -->"


def _split(label: str, language: str) -> str:
    """The study's split label for a student: as collected in English; in another language ``Set5`` or the bundled
    sample photos' test split (the collector's note on where Set5 was looked for is the instructor's)."""
    if language == "en" or label == "Set5":
        return label
    return tr("bundled sample photos, test split", language=language)


def _f(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def student_text(a: dict, student: str, max_points: float, language: str = "en") -> str:
    """The Markdown paragraph for ``student`` from :func:`course.mos.results.analyse`'s output ``a``."""
    if language not in LANGUAGES:
        raise ValueError(f"--language {language!r}: no feedback text in that language (have: {', '.join(LANGUAGES)})")
    rows = {r["version"]: r for r in a["rows"]}
    me = rows.get(f"student:{student}")
    from course.mos.gradebook import student_points

    pts = student_points(a, max_points).get(student, (math.nan, math.nan))[1]
    lang = language
    lines = [f"**{tr('Human evaluation (blind MOS study, {split})', language=lang, split=_split(a['split'], lang))}**",
             ""]
    if me is None or math.isnan(pts):
        lines.append(tr("Your images have no kept rating yet: no points from the human evaluation so far.",
                        language=lang))
    else:
        lines.append(tr("Your images' mean opinion score: {mos} on the 1 (bad) … 5 (excellent) scale, 95 % interval "
                        "{low}–{high} (bootstrap over raters and images; rater bias and inconsistency corrected).",
                        language=lang, mos=_f(me["model_mos"]), low=_f(me["model_low"]), high=_f(me["model_high"])))
        lines.append(tr("Hidden controls in the same study: nearest-neighbour upscale {nn}, bicubic {bicubic}, the "
                        "original HR image {hr}.", language=lang,
                        **{k: _f(rows.get(f"control:{k}", {}).get("model_mos", math.nan))
                           for k in ("nn", "bicubic", "hr")}))
        lines.append(tr("Points: {points} / {max} = {max} × (your MOS − nearest-neighbour) / (HR − nearest-neighbour),"
                        " clipped to 0…{max}.", language=lang, points=_f(pts), max=f"{max_points:g}"))
    return "\n".join(lines) + "\n"


def write_student_files(a: dict, out_dir: Path, max_points: float, language: str = "en") -> dict[str, Path]:
    """``out_dir/<student>.md`` for every student version of the study (atomic writes); returns the paths."""
    from sr_utils.files import atomic_write_bytes

    out = {}
    for r in a["rows"]:
        if r["kind"] == "student":
            path = Path(out_dir) / f"{r['name']}.md"
            atomic_write_bytes(path, student_text(a, r["name"], max_points, language).encode())
            out[r["name"]] = path
    return out


def merge_comment(existing: str | None, text: str) -> str:
    """``existing`` (a grader's comment, possibly with an older kit block) with the kit's block replaced by ``text``."""
    block = f"{MARK_BEGIN}\n{text.strip()}\n{MARK_END}"
    existing = existing or ""
    if MARK_BEGIN in existing and MARK_END in existing:
        head, rest = existing.split(MARK_BEGIN, 1)
        return head + block + rest.split(MARK_END, 1)[1]
    return f"{existing.rstrip()}\n\n{block}".strip() if existing.strip() else block
