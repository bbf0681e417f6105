"""Rater screening after ITU-T P.808 / P.910 crowdsourcing practice: gold items, test–retest, straight-lining and
disagreement with the panel. Every check gives a reason in plain words; a flagged rater is left out of the MOS by
default (``results --keep RATER`` puts one back).

Checks (thresholds in :class:`ScreeningConfig`):

- ``gold``: the hidden controls with a known place on the scale (nearest-neighbour upscale = 1, a clearly degraded
  version = 1, the HR original = 5). Flagged when the HR mean does not beat the NN mean by ``min_gap``, or when the
  mean distance to the known scores exceeds ``gold_max_error``.
- ``retest``: items shown twice (under different ids, far apart). Flagged when the mean absolute difference between
  the two answers exceeds ``retest_max``.
- ``straight-lining``: rating variance under ``min_variance`` (P.808: 0.15), over all items or over the students'
  items alone (a rater who rates the controls honestly and every student the same).
- ``panel``: Pearson correlation with the leave-this-rater-out consensus (the other raters' mean of the same items)
  under ``min_correlation``; or a *differential* bias — the rater's mean deviation from the consensus on the students'
  items minus that on the controls — with a robust z-score |z| ≥ ``z_limit`` (3.29, two-sided p = 0.001) against the
  other raters' (a harsh TA is harsh on the controls too and is not flagged: the model corrects their bias; a
  saboteur who rates the controls honestly and the students low is).
- ``favouritism``: one version rated ``max_version_shift`` points or more above or below the consensus, beyond the
  rater's own bias (raising a friend, sinking a rival).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from course.mos.model import _quiet

__all__ = ["ScreeningConfig", "screen_raters", "GOLD"]

#: Known places of the gold items on the 1..5 scale.
GOLD = {"control:nn": 1.0, "gold:degraded": 1.0, "control:hr": 5.0}


@dataclass(frozen=True)
class ScreeningConfig:
    min_gap: float = 1.0
    gold_max_error: float = 1.25
    retest_max: float = 2.0
    min_variance: float = 0.15
    min_correlation: float = 0.3
    z_limit: float = 3.29
    min_bias_shift: float = 1.0
    max_version_shift: float = 2.0
    min_items: int = 5


def _gold_checks(x_r: np.ndarray, versions: np.ndarray, cfg: ScreeningConfig) -> tuple[dict, list[str]]:
    mean = {v: float(np.nanmean(x_r[versions == v])) if np.any(~np.isnan(x_r[versions == v])) else np.nan
            for v in GOLD}
    stats = {"hr_mean": mean["control:hr"], "nn_mean": mean["control:nn"],
             "gap": mean["control:hr"] - mean["control:nn"]}
    errors = [abs(x_r[(versions == v)] - s) for v, s in GOLD.items()]
    err = np.concatenate(errors)
    stats["gold_error"] = float(np.nanmean(err)) if np.any(~np.isnan(err)) else np.nan
    flags = []
    if not np.isnan(stats["gap"]) and stats["gap"] < cfg.min_gap:
        flags.append(f"gold: HR originals {stats['hr_mean']:.2f} vs nearest-neighbour {stats['nn_mean']:.2f} "
                     f"(HR should lead by ≥ {cfg.min_gap:g})")
    if not np.isnan(stats["gold_error"]) and stats["gold_error"] > cfg.gold_max_error:
        flags.append(f"gold: scores of the known items are {stats['gold_error']:.2f} points off on average "
                     f"(limit {cfg.gold_max_error:g})")
    return stats, flags


def screen_raters(x: np.ndarray, raters: list[str], item_version: list[str],
                  repeats: dict[str, list[tuple[int, int]]] | None = None,
                  config: ScreeningConfig = ScreeningConfig()) -> dict[str, dict]:
    """Screen every rater of ``x``, an ``(items, raters)`` float array of scores (NaN: not rated) whose items are of
    ``item_version`` (``(items,)`` names: ``student:…``, ``control:…``, ``reference:…``, ``gold:…``).
    ``repeats``: ``{rater: [(first answer, second answer), ...]}`` of the repeated items.

    Returns ``{rater: {"flags": [reason, ...], <statistics>}}``; an empty list means kept. Consensus statistics are
    computed twice: the second time without the raters flagged the first time.
    """
    x = np.asarray(x, dtype=np.float64)
    versions = np.asarray(item_version)
    is_student = np.char.startswith(versions.astype(str), "student:")
    is_control = np.char.startswith(versions.astype(str), "control:") | np.char.startswith(versions.astype(str),
                                                                                            "gold:")
    out: dict[str, dict] = {}
    for i, rater in enumerate(raters):
        stats, flags = _gold_checks(x[:, i], versions, config)
        seen = x[~np.isnan(x[:, i]), i]
        stats["answered"] = int(seen.size)
        stats["variance"] = float(seen.var()) if seen.size > 1 else np.nan
        stu = x[is_student & ~np.isnan(x[:, i]), i]
        stats["student_variance"] = float(stu.var()) if stu.size > 1 else np.nan
        if seen.size >= config.min_items and stats["variance"] < config.min_variance:
            flags.append(f"straight-lining: rating variance {stats['variance']:.2f} (minimum {config.min_variance:g})")
        elif stu.size >= config.min_items and stats["student_variance"] < config.min_variance:
            flags.append(f"straight-lining on the students' images: variance {stats['student_variance']:.2f} "
                         f"(minimum {config.min_variance:g})")
        pairs = (repeats or {}).get(rater, [])
        stats["retest"] = float(np.mean([abs(a - b) for a, b in pairs])) if pairs else np.nan
        if len(pairs) >= 2 and stats["retest"] > config.retest_max:
            flags.append(f"retest: repeated images scored {stats['retest']:.2f} points apart on average "
                         f"(limit {config.retest_max:g})")
        out[rater] = {"flags": flags, **stats}
    for _ in range(2):
        keep = np.array([not any(f.startswith(("gold", "straight")) for f in out[r]["flags"]) for r in raters])
        _panel(x, raters, versions, is_student, is_control, keep, config, out)
    return out


def _panel(x, raters, versions, is_student, is_control, keep, cfg, out) -> None:
    """Consensus checks (correlation, differential bias, favouritism) against the kept raters other than each one."""
    seen = ~np.isnan(x)
    kx = np.where(seen & keep[None, :], x, 0.0)
    kn = (seen & keep[None, :]).sum(axis=1).astype(np.float64)
    ks = kx.sum(axis=1)
    shift = np.full(len(raters), np.nan)
    corr = np.full(len(raters), np.nan)
    per_version: list[dict] = []
    for i in range(len(raters)):
        own = seen[:, i] & keep[i]
        n_other = kn - own
        with _quiet(), np.errstate(invalid="ignore", divide="ignore"):
            consensus = np.where(n_other > 0, (ks - np.where(own, x[:, i], 0.0)) / np.maximum(n_other, 1), np.nan)
        both = seen[:, i] & ~np.isnan(consensus)
        dev = x[:, i] - consensus
        vs = {}
        if both.sum() >= cfg.min_items and np.std(x[both, i]) > 0 and np.std(consensus[both]) > 0:
            corr[i] = float(np.corrcoef(x[both, i], consensus[both])[0, 1])
        s, c = both & is_student, both & is_control
        if s.any() and c.any():
            shift[i] = float(dev[s].mean() - dev[c].mean())
        bias = float(dev[both].mean()) if both.any() else 0.0
        for v in np.unique(versions[s]):
            vs[str(v)] = float(dev[s & (versions == v)].mean()) - bias
        per_version.append(vs)
    ok = ~np.isnan(shift) & keep
    centre = float(np.median(shift[ok])) if ok.any() else 0.0
    scale = max(1.4826 * float(np.median(np.abs(shift[ok] - centre))) if ok.any() else 0.0, 0.15)
    for i, rater in enumerate(raters):
        st = out[rater]
        st["flags"] = [f for f in st["flags"] if not f.startswith(("panel", "favouritism"))]
        st["correlation"] = corr[i]
        st["student_shift"] = shift[i]
        z = (shift[i] - centre) / scale if not np.isnan(shift[i]) else np.nan
        st["shift_z"] = z
        if not np.isnan(corr[i]) and corr[i] < cfg.min_correlation:
            st["flags"].append(f"panel: correlation {corr[i]:.2f} with the other raters' consensus "
                               f"(minimum {cfg.min_correlation:g})")
        if not np.isnan(z) and abs(z) >= cfg.z_limit and abs(shift[i] - centre) >= cfg.min_bias_shift:
            word = "below" if shift[i] < centre else "above"
            st["flags"].append(f"panel: rates the students {abs(shift[i]):.2f} points {word} the consensus beyond "
                               f"their bias on the controls (z = {z:.1f}, limit ±{cfg.z_limit:g})")
        worst = max(per_version[i].items(), key=lambda kv: abs(kv[1]), default=None)
        st["max_version_shift"] = worst[1] if worst else np.nan
        if worst and abs(worst[1]) >= cfg.max_version_shift:
            st["flags"].append(f"favouritism: one version ({worst[0]}) rated {worst[1]:+.2f} points against the "
                               f"consensus beyond the rater's bias (limit ±{cfg.max_version_shift:g})")
