"""Pairwise mode: two versions of the same image side by side, the rater picks the better one; Bradley–Terry scaling.

- :func:`bradley_terry`: maximum-likelihood strengths by Hunter's (2004) MM algorithm, each version tied to a virtual
  average opponent by one win and one loss (a weak prior: a version that won every comparison, the HR original, gets
  a finite score). Comparisons may be weighted (a bootstrap resample counts some raters and images several times).
- :func:`next_pair`: adaptive choice. Among the pairs of versions of one image that the rater may see and has not yet
  compared, the one whose current scores are closest, the least compared first (close versions are where a
  comparison tells the most); ties broken at random.
- :func:`scale_to_points_scale`: the scores mapped linearly so the nearest-neighbour control sits at 1 and the HR
  original at 5; the points rule of the MOS study then applies unchanged.
- :func:`pairwise_estimate`: per version, the mapped score with a 95 % interval from a bootstrap over raters and
  images; and per rater the gold check (the HR original must beat the nearest-neighbour and the degraded versions).
"""
from __future__ import annotations

import math
import random

import numpy as np

__all__ = ["bradley_terry", "next_pair", "scale_to_points_scale", "pairwise_estimate", "rater_pair_set"]


def bradley_terry(n_versions: int, winners: np.ndarray, losers: np.ndarray, weights: np.ndarray | None = None,
                  iterations: int = 500, tol: float = 1e-9) -> np.ndarray:
    """``(n_versions,)`` log-strengths (float64, the virtual opponent at 0) from comparisons ``winners[k]`` beat
    ``losers[k]`` (int index arrays of equal length), optionally weighted."""
    w = np.ones(len(winners)) if weights is None else np.asarray(weights, dtype=np.float64)
    wins = np.bincount(winners, weights=w, minlength=n_versions) + 1.0  # + one win against the virtual opponent
    p = np.ones(n_versions)
    for _ in range(iterations):
        inv = w / (p[winners] + p[losers])
        denom = np.bincount(winners, weights=inv, minlength=n_versions) + \
            np.bincount(losers, weights=inv, minlength=n_versions) + 2.0 / (p + 1.0)  # two games vs. the virtual one
        new = wins / denom
        if np.max(np.abs(np.log(new) - np.log(p))) < tol:
            p = new
            break
        p = new
    return np.log(p)


def scale_to_points_scale(theta: np.ndarray, nn: int, hr: int) -> np.ndarray:
    """``theta`` mapped linearly so that version ``nn`` is at 1 and version ``hr`` at 5 (NaN when HR ≤ NN)."""
    span = theta[hr] - theta[nn]
    if not span > 0:
        return np.full_like(theta, np.nan)
    return 1.0 + 4.0 * (theta - theta[nn]) / span


def rater_pair_set(meta: dict, rater: str) -> dict[str, list[str]]:
    """``{image: [item ids]}`` the rater may be shown (their set, repeats aside)."""
    out: dict[str, list[str]] = {}
    for item in meta["orders"][rater]:
        it = meta["items"][item]
        if "repeat_of" not in it:
            out.setdefault(it["image"], []).append(item)
    return out


def next_pair(meta: dict, rater: str, comparisons: list[tuple[str, str, str, str]],
              rng: random.Random) -> tuple[str, str] | None:
    """The next ``(left item, right item)`` for ``rater`` given every ``(rater, left, right, winner)`` so far, or
    None when the rater has done ``meta["pairs_per_rater"]`` comparisons or has no pair left."""
    items = meta["items"]
    mine = [c for c in comparisons if c[0] == rater]
    if len(mine) >= meta.get("pairs_per_rater", 30):
        return None
    versions = meta["versions"] + ["gold:degraded"]
    index = {v: k for k, v in enumerate(versions)}
    theta = _theta(items, index, comparisons)
    count: dict[frozenset, int] = {}
    for _, a, b, _ in comparisons:
        key = frozenset((items[a]["version"], items[b]["version"]))
        count[key] = count.get(key, 0) + 1
    done = {frozenset((a, b)) for _, a, b, _ in mine}
    best, best_key = [], None
    for image, ids in rater_pair_set(meta, rater).items():
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                a, b = ids[i], ids[j]
                if frozenset((a, b)) in done:
                    continue
                va, vb = items[a]["version"], items[b]["version"]
                key = (count.get(frozenset((va, vb)), 0), round(abs(theta[index[va]] - theta[index[vb]]), 6))
                if best_key is None or key < best_key:
                    best, best_key = [(a, b)], key
                elif key == best_key:
                    best.append((a, b))
    if not best:
        return None
    a, b = rng.choice(best)
    return (a, b) if rng.random() < 0.5 else (b, a)


def _theta(items, index, comparisons, weights=None) -> np.ndarray:
    win = np.array([index[items[w]["version"]] for _, _, _, w in comparisons], dtype=np.int64)
    lose = np.array([index[items[b if w == a else a]["version"]] for _, a, b, w in comparisons], dtype=np.int64)
    return bradley_terry(len(index), win, lose, weights)


def pairwise_estimate(meta: dict, comparisons: list[tuple[str, str, str, str]], leave_out: set[str] = frozenset(),
                      resamples: int = 200, seed: int = 0, level: float = 0.95) -> dict:
    """Per version ``{"score", "low", "high", "n"}`` on the 1 (NN) … 5 (HR) scale, and ``"_gold"``: per rater
    ``(right, total)`` of their comparisons of the HR original against the NN or degraded version."""
    items = meta["items"]
    kept = [c for c in comparisons if c[0] not in leave_out]
    versions = meta["versions"] + ["gold:degraded"]
    index = {v: k for k, v in enumerate(versions)}
    nn, hr = index["control:nn"], index["control:hr"]
    scores = scale_to_points_scale(_theta(items, index, kept), nn, hr)
    raters = sorted({c[0] for c in kept})
    images = sorted({items[c[1]]["image"] for c in kept})
    rng = np.random.default_rng(seed)
    boot = np.full((resamples, len(versions)), np.nan)
    r_of = np.array([raters.index(c[0]) for c in kept], dtype=np.int64)
    i_of = np.array([images.index(items[c[1]]["image"]) for c in kept], dtype=np.int64)
    for b in range(resamples if kept else 0):
        rw = np.bincount(rng.integers(0, len(raters), len(raters)), minlength=len(raters))
        iw = np.bincount(rng.integers(0, len(images), len(images)), minlength=len(images))
        boot[b] = scale_to_points_scale(_theta(items, index, kept, (rw[r_of] * iw[i_of]).astype(float)), nn, hr)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    out = {}
    for v, k in index.items():
        n = sum(1 for _, a, b, _ in kept if v in (items[a]["version"], items[b]["version"]))
        col = boot[:, k][~np.isnan(boot[:, k])]
        out[v] = {"score": float(scores[k]) if n else math.nan, "n": n,
                  "low": float(np.percentile(col, lo)) if col.size > 1 and n else math.nan,
                  "high": float(np.percentile(col, hi)) if col.size > 1 and n else math.nan}
    gold: dict[str, list[int]] = {}
    for r, a, b, w in comparisons:
        pair = {items[a]["version"], items[b]["version"]}
        if "control:hr" in pair and pair & {"control:nn", "gold:degraded"}:
            g = gold.setdefault(r, [0, 0])
            g[1] += 1
            g[0] += items[w]["version"] == "control:hr"
    out["_gold"] = {r: tuple(g) for r, g in gold.items()}
    return out
