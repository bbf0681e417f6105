"""The results of a pairwise study in the shape of :func:`course.mos.results.analyse`'s: per version the
Bradley–Terry score on the NN = 1 … HR = 5 scale with its bootstrap interval and points, screening of the raters and
the leave-one-rater-out check.

Screening in pairwise mode:

- ``gold``: comparisons of the HR original with the nearest-neighbour or the degraded version; flagged when fewer
  than 75 % of at least two went to the HR original.
- ``panel``: the share of the rater's choices that agree with the ranking fitted on everyone else's who passed the
  gold check (at least two other raters); flagged under 50 % (worse than a coin) over at least 10 comparisons.
"""
from __future__ import annotations

import math

import numpy as np

from course.mos.analysis import points
from course.mos.pairwise import _theta, pairwise_estimate
from course.mos.store import AnswerStore

__all__ = ["analyse_pairwise"]


def _screen(meta: dict, comparisons: list, est: dict) -> dict[str, dict]:
    items = meta["items"]
    out = {}
    gold_bad = set()
    for rater in meta["raters"]:
        right, total = est["_gold"].get(rater, (0, 0))
        if total >= 2 and right / total < 0.75:
            gold_bad.add(rater)
    for rater in meta["raters"]:
        mine = [c for c in comparisons if c[0] == rater]
        right, total = est["_gold"].get(rater, (0, 0))
        flags = []
        if rater in gold_bad:
            flags.append(f"gold: chose the nearest-neighbour or degraded version over the HR original in "
                         f"{total - right} of {total} pairs")
        agree = math.nan
        # the panel is everyone else who passed the gold check; one other voice is no consensus
        panel = [c for c in comparisons if c[0] != rater and c[0] not in gold_bad]
        if len(mine) >= 10 and len({c[0] for c in panel}) >= 2:
            index = {v: k for k, v in enumerate(meta["versions"] + ["gold:degraded"])}
            theta = _theta(items, index, panel)  # log-strengths: defined even when the panel's controls tie
            hits = []
            for _, a, b, w in mine:
                d = theta[index[items[w]["version"]]] - theta[index[items[b if w == a else a]["version"]]]
                hits.append(1.0 if d > 1e-9 else 0.5 if abs(d) <= 1e-9 else 0.0)
            agree = float(np.mean(hits))
            if agree < 0.5:
                flags.append(f"panel: agrees with the others' ranking on {agree:.0%} of their pairs (minimum 50 %)")
        out[rater] = {"flags": flags, "gold_right": right, "gold_total": total, "agreement": agree,
                      "answered": len(mine), "hr_mean": math.nan, "nn_mean": math.nan, "gap": math.nan}
    return out


def analyse_pairwise(study, exclude=(), keep=(), max_points: float = 4.0, resamples: int = 200) -> dict:
    """:func:`course.mos.results.analyse` for a study frozen with ``mode="pairwise"``."""
    meta = study.meta
    comparisons = [c for c in AnswerStore(study.db_path).all_comparisons()
                   if all(i in meta["items"] for i in c[1:])]
    screen = _screen(meta, comparisons, pairwise_estimate(meta, comparisons, resamples=0))
    flagged = sorted(r for r, st in screen.items() if st["flags"])
    left_out = (set(flagged) - set(keep)) | set(exclude)
    est = pairwise_estimate(meta, comparisons, left_out, resamples=resamples)
    raters_in = {c[0] for c in comparisons if c[0] not in left_out}
    base_pts = {v: points(est[v]["score"], 1.0, 5.0, max_points) for v in meta["versions"]}
    loo = {v: (0.0, "") for v in meta["versions"] if v.startswith("student:")}
    for r in sorted(raters_in):
        e = pairwise_estimate(meta, comparisons, left_out | {r}, resamples=0)
        for v in loo:
            p = points(e[v]["score"], 1.0, 5.0, max_points)
            d = abs(p - base_pts[v]) if not (math.isnan(p) or math.isnan(base_pts[v])) else 0.0
            if d > loo[v][0]:
                loo[v] = (d, r)
    rows = []
    for v in meta["versions"]:
        kind, _, name = v.partition(":")
        e = est[v]
        d, r = loo.get(v, (math.nan, ""))
        rows.append({"version": v, "kind": kind, "name": name, "model_mos": e["score"], "model_low": e["low"],
                     "model_high": e["high"], "mos": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                     "sd": math.nan, "n": e["n"], "raters": len({c[0] for c in comparisons if c[0] not in left_out
                                                                  and v in {meta["items"][c[1]]["version"],
                                                                            meta["items"][c[2]]["version"]}}),
                     "points": base_pts[v], "loo_change": d, "loo_rater": r,
                     "hinges": bool(d > 0.1 * max_points) if kind == "student" else False})
    order = {"student": 0, "reference": 1, "control": 2}
    rows.sort(key=lambda x: (order[x["kind"]], -x["model_mos"] if not math.isnan(x["model_mos"]) else math.inf,
                             x["name"]))
    total = meta.get("pairs_per_rater", 0)
    progress = {r: {"answered": screen[r]["answered"], "total": total} for r in meta["raters"]}
    for r, st in screen.items():
        st.update(bias=math.nan, inconsistency=math.nan)
    return {"rows": rows, "screening": screen, "consistency": {r: {"hr_mean": math.nan, "nn_mean": math.nan,
                                                                    "gap": math.nan, "consistent": None}
                                                                for r in screen},
            "alpha": math.nan, "excluded": sorted(left_out), "flagged": flagged, "kept_back": sorted(set(keep)),
            "progress": progress, "n_ratings": sum(1 for c in comparisons if c[0] not in left_out),
            "min_gap": 1.0, "max_points": max_points, "split": meta["split"], "mode": "pairwise"}
