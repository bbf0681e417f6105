"""The statistics of a MOS study: means with confidence intervals, rater consistency, inter-rater agreement.

Inputs are plain numbers (integer scores 1..5); nothing here knows about files, students or the web app. The study's
results use :mod:`course.mos.model` (bias-corrected MOS, bootstrap over raters and images) and
:mod:`course.mos.screening`; :func:`mean_ci` and :func:`rater_consistency` remain as the simple textbook forms, for
comparison and for quick checks.

- :func:`mean_ci`: the mean of a version's ratings with a two-sided 95 % confidence interval from Student's
  t-distribution over the individual ratings (``mean ± t(0.975, n-1) · s / sqrt(n)``). It treats the ratings as
  independent, which they are not quite (one rater scores several images of a version): with few raters the interval
  is optimistic. It is the interval the SRGAN paper's MOS tables imply (mean and spread of all ratings).
- :func:`rater_consistency`: a rater is consistent when their mean score of the hidden HR originals exceeds their
  mean score of the hidden nearest-neighbour upscales by at least ``min_gap`` (HR should lead, NN trail).
- :func:`krippendorff_alpha`: Krippendorff's alpha for ordinal data (or interval, nominal), with missing ratings
  (peer raters never see their own images), after Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability".
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np

__all__ = ["mean_ci", "rater_consistency", "krippendorff_alpha", "CI_METHOD"]

#: One line saying how the intervals are computed, printed under every table.
CI_METHOD = ("95 % CI: Student's t over the individual ratings (mean ± t(0.975, n−1)·s/√n); "
             "ratings treated as independent")


def _t_quantile(p: float, dof: int) -> float:
    from scipy.stats import t  # scikit-image, a kit dependency, depends on scipy

    return float(t.ppf(p, dof))


def mean_ci(scores: Iterable[float], level: float = 0.95) -> dict:
    """``{"mos", "ci_low", "ci_high", "sd", "n"}`` of a list of scores. ``n`` < 2 gives a NaN interval
    (one rating has no spread); no rating gives NaN everywhere and ``n`` = 0."""
    x = np.asarray(list(scores), dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return {"mos": math.nan, "ci_low": math.nan, "ci_high": math.nan, "sd": math.nan, "n": 0}
    mos = float(x.mean())
    if n < 2:
        return {"mos": mos, "ci_low": math.nan, "ci_high": math.nan, "sd": math.nan, "n": 1}
    sd = float(x.std(ddof=1))
    half = _t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return {"mos": mos, "ci_low": mos - half, "ci_high": mos + half, "sd": sd, "n": n}


def rater_consistency(ratings: Iterable[tuple[str, str, int]], high: str = "control:hr",
                      low: str = "control:nn", min_gap: float = 1.0) -> dict[str, dict]:
    """Per rater: mean score of the ``high`` and ``low`` control versions and whether high − low ≥ ``min_gap``.

    ``ratings`` are ``(rater, version, score)`` triples. A rater who has rated neither control yet is reported
    with ``consistent = None`` (unknown), not as inconsistent.
    """
    by_rater: dict[str, dict[str, list[int]]] = {}
    for rater, version, score in ratings:
        by_rater.setdefault(rater, {}).setdefault(version, []).append(score)
    out = {}
    for rater, versions in sorted(by_rater.items()):
        hi = float(np.mean(versions[high])) if versions.get(high) else math.nan
        lo = float(np.mean(versions[low])) if versions.get(low) else math.nan
        known = not (math.isnan(hi) or math.isnan(lo))
        out[rater] = {"hr_mean": hi, "nn_mean": lo, "gap": hi - lo if known else math.nan,
                      "consistent": (hi - lo >= min_gap) if known else None}
    return out


def _delta2(values: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    """Squared difference function delta²(c, k) for the sorted distinct ``values`` with marginal totals ``n_c``."""
    c = values[:, None]
    k = values[None, :]
    if level == "nominal":
        return (c != k).astype(np.float64)
    if level == "interval":
        return (c - k) ** 2
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])  # cum[i] = n_0 + ... + n_{i-1}
        i = np.arange(len(values))
        lo, hi = np.minimum.outer(i, i), np.maximum.outer(i, i)
        # sum_{g=lo}^{hi} n_g - (n_lo + n_hi) / 2
        d = (cum[hi + 1] - cum[lo]) - (n_c[lo] + n_c[hi]) / 2.0
        return d ** 2
    raise ValueError(f"level must be 'nominal', 'ordinal' or 'interval', got {level!r}")


def krippendorff_alpha(data, level: str = "ordinal") -> float:
    """Krippendorff's alpha of a reliability matrix.

    Args:
        data: ``(raters, units)`` array-like of scores, ``NaN`` (or ``None``) where a rater did not rate a unit;
            or a mapping ``{unit: [scores...]}`` (the values each unit received, any raters).
        level: ``"ordinal"`` (default, for 1..5 opinion scores), ``"interval"`` or ``"nominal"``.

    Returns alpha in (-1, 1]: 1 is perfect agreement, 0 agreement at chance. Units with fewer than two ratings
    are not pairable and are ignored; NaN when fewer than two pairable values or no variation at all.
    """
    if isinstance(data, Mapping):
        units = [np.asarray([v for v in vals if v is not None], dtype=np.float64) for vals in data.values()]
    else:
        m = np.asarray(data, dtype=np.float64)
        if m.ndim != 2:
            raise ValueError(f"krippendorff_alpha: expected a (raters, units) matrix, got shape {m.shape}")
        units = [col[~np.isnan(col)] for col in m.T]
    units = [u for u in units if u.size >= 2]
    if not units:
        return math.nan
    values = np.unique(np.concatenate(units))
    index = {v: i for i, v in enumerate(values)}
    # coincidence matrix o_ck: every ordered pair of values within a unit, weighted 1 / (m_u - 1)
    o = np.zeros((len(values), len(values)))
    for u in units:
        counts = np.zeros(len(values))
        for v in u:
            counts[index[v]] += 1
        o += (np.outer(counts, counts) - np.diag(counts)) / (u.size - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d2 = _delta2(values, n_c, level)
    d_e = (np.outer(n_c, n_c) * d2).sum()  # sum over c != k of n_c n_k delta2 (delta2 is 0 on the diagonal)
    if d_e == 0:
        return math.nan
    return float(1.0 - (n - 1) * (o * d2).sum() / d_e)
