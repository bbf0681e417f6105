"""From answers to numbers: the ratings matrix, screening, the bias-corrected MOS with bootstrap intervals, points and
the leave-one-rater-out check. Works on a study's metadata (``study.json``) or on a simulated one alike.

Points (rubric line ``human_evaluation``): ``max × clip((MOS − MOS_NN) / (MOS_HR − MOS_NN), 0, 1)`` with the
model's MOS; the NN control scores 0, the HR original full marks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from course.mos.model import ModelConfig, bootstrap_versions, fit_subject_model, version_means
from course.mos.screening import ScreeningConfig, screen_raters

__all__ = ["Table", "build_table", "estimate", "leave_one_out", "points", "AnalysisConfig"]


@dataclass(frozen=True)
class AnalysisConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)
    max_points: float = 4.0
    #: a student whose points change by more than this share of ``max_points`` when one rater is removed is marked
    hinge_share: float = 0.10


@dataclass
class Table:
    """``x``: ``(items, raters)`` float64 scores 1..5, NaN where not rated (a repeated item: the mean of its two
    answers); ``item_version``/``item_image``: ``(items,)`` names; ``raw``: every ``(rater, version, score)`` answer
    but the repeats; ``repeats``: ``{rater: [(first, second), ...]}``."""

    raters: list[str]
    item_version: list[str]
    item_image: list[str]
    x: np.ndarray
    raw: list[tuple[str, str, int]]
    repeats: dict[str, list[tuple[int, int]]]


def build_table(meta: dict, answers: list[tuple[str, str, int]]) -> Table:
    """The table of a study's ``meta`` (``study.json``) and its ``(rater, item, score)`` answers (unknown items and
    raters are ignored)."""
    items = meta["items"]
    base = [i for i, it in items.items() if "repeat_of" not in it]
    row = {i: k for k, i in enumerate(base)}
    raters = list(meta["raters"])
    col = {r: k for k, r in enumerate(raters)}
    given: dict[tuple[str, str], int] = {}
    raw = []
    for r, i, s in answers:
        if i in items and r in col:
            given[(r, i)] = s
            if "repeat_of" not in items[i]:  # a repeat is for test-retest only: one rating per rater and item
                raw.append((r, items[i]["version"], s))
    x = np.full((len(base), len(raters)), np.nan)
    for (r, i), s in given.items():
        if "repeat_of" not in items[i]:
            x[row[i], col[r]] = s
    repeats: dict[str, list[tuple[int, int]]] = {}
    for (r, i), s in given.items():
        orig = items[i].get("repeat_of")
        if orig is not None and (r, orig) in given:
            repeats.setdefault(r, []).append((given[(r, orig)], s))
            x[row[orig], col[r]] = (given[(r, orig)] + s) / 2
    return Table(raters, [items[i]["version"] for i in base], [items[i]["image"] for i in base], x, raw, repeats)


def points(mos: float, nn: float, hr: float, max_score: float) -> float:
    """Points of a MOS between the NN (0) and HR (``max_score``) controls' MOS, rounded to 0.01; NaN when unknown."""
    if any(math.isnan(v) for v in (mos, nn, hr)) or hr <= nn:
        return math.nan
    return round(max_score * min(1.0, max(0.0, (mos - nn) / (hr - nn))), 2)


def _indices(table: Table, versions: list[str]):
    vi = {v: k for k, v in enumerate(versions)}
    images = sorted(set(table.item_image))
    ii = {im: k for k, im in enumerate(images)}
    keep = np.array([v in vi for v in table.item_version])
    iv = np.array([vi.get(v, -1) for v in table.item_version])
    im = np.array([ii[m] for m in table.item_image])
    return keep, iv, im


def _model_points(x, iv, im, versions, cfg: AnalysisConfig, weights=None) -> tuple[np.ndarray, np.ndarray]:
    q = fit_subject_model(x, cfg.model.min_inconsistency, cfg.model.max_iter, cfg.model.tol)["quality"]
    mos = version_means(q, iv, im, len(versions), weights)
    nn, hr = mos[versions.index("control:nn")], mos[versions.index("control:hr")]
    pts = np.array([points(m, nn, hr, cfg.max_points) for m in mos])
    return mos, pts


def estimate(table: Table, versions: list[str], leave_out: set[str], cfg: AnalysisConfig = AnalysisConfig(),
             intervals: bool = True) -> dict:
    """Per version: the raw mean with its bootstrap interval and the model's MOS with its bootstrap interval, and the
    points, without the raters in ``leave_out`` (``intervals=False``: no bootstrap, NaN intervals).
    Returns ``{version: {...}}`` and ``"_fit"`` (biases, inconsistencies).
    """
    cols = [k for k, r in enumerate(table.raters) if r not in leave_out]
    keep, iv, im = _indices(table, versions)
    x = table.x[keep][:, cols]
    iv, im = iv[keep], im[keep]
    fit = fit_subject_model(x, cfg.model.min_inconsistency, cfg.model.max_iter, cfg.model.tol)
    mos, pts = _model_points(x, iv, im, versions, cfg)
    boot = np.full((1, len(versions)), np.nan)
    rawboot = boot
    if intervals and x.size:
        boot = bootstrap_versions(x, iv, im, len(versions), cfg.model)
        rawboot = bootstrap_versions(x, iv, im, len(versions), cfg.model, raw=True)
    lo, hi = 100 * (1 - cfg.model.level) / 2, 100 * (1 + cfg.model.level) / 2
    out = {}
    kept_raters = {table.raters[c] for c in cols}
    for k, v in enumerate(versions):
        scores = [s for r, vv, s in table.raw if vv == v and r in kept_raters]
        raters_v = {r for r, vv, _ in table.raw if vv == v and r in kept_raters}
        with np.errstate(all="ignore"):
            b, rb = boot[:, k], rawboot[:, k]
            ok, rok = b[~np.isnan(b)], rb[~np.isnan(rb)]
        out[v] = {"mos": float(np.mean(scores)) if scores else math.nan, "n": len(scores), "raters": len(raters_v),
                  "sd": float(np.std(scores, ddof=1)) if len(scores) > 1 else math.nan,
                  "ci_low": float(np.percentile(rok, lo)) if rok.size > 1 else math.nan,
                  "ci_high": float(np.percentile(rok, hi)) if rok.size > 1 else math.nan,
                  "model_mos": float(mos[k]),
                  "model_low": float(np.percentile(ok, lo)) if ok.size > 1 else math.nan,
                  "model_high": float(np.percentile(ok, hi)) if ok.size > 1 else math.nan,
                  "points": float(pts[k])}
    out["_fit"] = {table.raters[c]: {"bias": float(fit["bias"][j]), "inconsistency": float(fit["inconsistency"][j])}
                   for j, c in enumerate(cols)}
    return out


def leave_one_out(table: Table, versions: list[str], leave_out: set[str],
                  cfg: AnalysisConfig = AnalysisConfig()) -> dict[str, dict]:
    """Per student version: the largest change of their points when any one kept rater is removed, and that rater.
    ``{version: {"max_change": float, "rater": str | None, "hinges": bool}}``."""
    cols = [k for k, r in enumerate(table.raters) if r not in leave_out]
    keep, iv, im = _indices(table, versions)
    x = table.x[keep][:, cols]
    iv, im = iv[keep], im[keep]
    _, base = _model_points(x, iv, im, versions, cfg)
    students = [k for k, v in enumerate(versions) if v.startswith("student:")]
    worst = {k: (0.0, None) for k in students}
    for j, c in enumerate(cols):
        _, pts = _model_points(np.delete(x, j, axis=1), iv, im, versions, cfg)
        for k in students:
            d = abs(pts[k] - base[k]) if not (math.isnan(pts[k]) or math.isnan(base[k])) else 0.0
            if d > worst[k][0]:
                worst[k] = (float(d), table.raters[c])
    limit = cfg.hinge_share * cfg.max_points
    return {versions[k]: {"max_change": d, "rater": r, "hinges": d > limit} for k, (d, r) in worst.items()}
