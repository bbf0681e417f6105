"""A simulated peer-rated class with known image qualities, to measure what screening and the model do against
careless and hostile raters (``tests/course_tests/mos/test_mos_simulation.py``; the figures in ``benchmarks/README.md``).

Raters: every student (honest unless planted) plus an instructor and a harsh TA (bias −0.8). An honest rater scores
``round(quality + bias + inconsistency · N(0, 1))`` clipped to 1..5, bias ~ N(0, 0.3), inconsistency ~ U(0.4, 0.8).
Planted: a *saboteur* (controls honest, every student 1), a *straight-liner* (always 3), a *random clicker* (uniform
1..5) and a *colluder* (controls honest, one friend 5, the rest honest). Orders come from :mod:`course.mos.design`
exactly as a real study's.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from course.mos.analysis import AnalysisConfig, Table, build_table, estimate, leave_one_out
from course.mos.design import assign_students, rater_order
from course.mos.screening import screen_raters

__all__ = ["SimConfig", "simulate_class", "run_simulation", "PLANTED"]

PLANTED = ("saboteur", "straightliner", "clicker", "colluder")
_CONTROL_QUALITY = {"control:nn": 1.2, "control:bicubic": 2.0, "control:hr": 4.8, "gold:degraded": 1.0}


@dataclass(frozen=True)
class SimConfig:
    students: int = 100
    images: int = 5
    per_student: int = 7
    repeats: int = 3
    seed: int = 0


def simulate_class(cfg: SimConfig = SimConfig()) -> tuple[dict, list[tuple[str, str, int]], dict[str, float], str]:
    """``(meta, answers, true quality per student version, friend of the colluder)``; ``meta`` has the keys of a
    study's ``study.json`` that the analysis reads (items, raters, versions, orders)."""
    rng = random.Random(cfg.seed)
    nrng = np.random.default_rng(cfg.seed)
    students = [f"s{k:03d}" for k in range(cfg.students)]
    planted = dict(zip(students[:4], PLANTED))
    raters = ["instructor", "ta-harsh", *students]
    true = {f"student:{s}": float(nrng.uniform(1.8, 4.2)) for s in students}
    versions = [*true, "control:nn", "control:bicubic", "control:hr"]
    images = [f"img{k}" for k in range(cfg.images)]
    items, quality = {}, {}
    for v in [*versions, "gold:degraded"]:
        for im in images:
            iid = f"i{len(items):05d}"
            items[iid] = {"version": v, "image": im}
            base = true.get(v, _CONTROL_QUALITY.get(v))
            quality[iid] = base + (float(nrng.normal(0, 0.3)) if v.startswith("student:") else 0.0)
    assigned = assign_students(students, raters, cfg.per_student, rng)
    orders, extra = {}, {}
    counter = iter(range(10 ** 9))
    for r in raters:
        mine = {v for v in versions if not v.startswith("student:")} | {"gold:degraded"} | \
               {f"student:{s}" for s in assigned[r]}
        orders[r], more = rater_order(items, mine, cfg.repeats, rng, lambda: f"r{next(counter):05d}")
        extra.update(more)
    items.update(extra)
    friend_of = min((f"student:{s}" for s in assigned[students[3]]), key=true.get)  # the most to gain
    answers = []
    for r in raters:
        kind = planted.get(r, "honest")
        bias = -0.8 if r == "ta-harsh" else float(nrng.normal(0, 0.3))
        noise = float(nrng.uniform(0.4, 0.8))
        for iid in orders[r]:
            it = items[iid]
            q = quality[it.get("repeat_of", iid)]
            honest = int(np.clip(round(q + bias + noise * nrng.normal()), 1, 5))
            student = it["version"].startswith("student:")
            score = {"saboteur": 1 if student else honest, "straightliner": 3,
                     "clicker": int(nrng.integers(1, 6)),
                     "colluder": 5 if it["version"] == friend_of else honest}.get(kind, honest)
            answers.append((r, iid, score))
    meta = {"items": items, "raters": raters, "versions": versions, "orders": orders, "planted": planted}
    return meta, answers, true, friend_of


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def run_simulation(cfg: SimConfig = SimConfig(), analysis: AnalysisConfig = AnalysisConfig()) -> dict:
    """Screen, estimate and check influence on one simulated class; returns the figures of ``benchmarks/README.md``.
    """
    meta, answers, true, friend = simulate_class(cfg)
    table: Table = build_table(meta, answers)
    screen = screen_raters(table.x, table.raters, table.item_version, table.repeats, analysis.screening)
    flagged = {r for r, s in screen.items() if s["flags"]}
    planted = {r for r, kind in meta["planted"].items()}
    versions = meta["versions"]
    kept = estimate(table, versions, flagged, analysis)
    everyone = estimate(table, versions, set(), analysis, intervals=False)
    loo = leave_one_out(table, versions, flagged, analysis)
    studs = [v for v in versions if v.startswith("student:")]
    honest = [v for v in studs if v.split(":", 1)[1] not in planted]
    # a planted rater's own influence, had screening not caught them: points with everyone vs. without that rater
    unscreened = {}
    for r in sorted(planted):
        without = estimate(table, versions, {r}, analysis, intervals=False)
        unscreened[meta["planted"][r]] = max(abs(everyone[v]["points"] - without[v]["points"]) for v in studs)
    load = [len(o) for o in meta["orders"].values()]
    return {
        "students": cfg.students, "raters": len(table.raters), "per_student": cfg.per_student,
        "max_items_per_rater": max(load), "min_items_per_rater": min(load),
        "planted_flagged": sorted(meta["planted"][r] for r in planted & flagged),
        "planted_missed": sorted(meta["planted"][r] for r in planted - flagged),
        "honest_flagged": sorted(flagged - planted),
        "flag_reasons": {meta["planted"].get(r, r): screen[r]["flags"] for r in sorted(flagged)},
        "spearman_model": _spearman([true[v] for v in honest], [kept[v]["model_mos"] for v in honest]),
        "spearman_raw": _spearman([true[v] for v in honest], [kept[v]["mos"] for v in honest]),
        "spearman_unscreened_raw": _spearman([true[v] for v in honest], [everyone[v]["mos"] for v in honest]),
        "max_loo_change": max(d["max_change"] for d in loo.values()),
        "hinging_students": sorted(v for v, d in loo.items() if d["hinges"]),
        "unscreened_influence": unscreened,
        "friend_points_kept": kept[friend]["points"], "friend_points_everyone": everyone[friend]["points"],
        "max_points": analysis.max_points,
        "ci_width_model": float(np.nanmean([kept[v]["model_high"] - kept[v]["model_low"] for v in honest])),
        "ci_width_raw": float(np.nanmean([kept[v]["ci_high"] - kept[v]["ci_low"] for v in honest])),
        "nan": math.nan,
    }
