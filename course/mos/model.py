"""Bias-corrected MOS: the maximum-likelihood subject model of ITU-T P.910 (2021+, "subject model") and Netflix's
SUREAL, with intervals from a bootstrap over raters and images.

The model (Li, Bampis, Krasula, Katsavounidis, Sullivan, "A simple model for subject behavior in subjective
experiments", 2020): rater ``i``'s score of item ``j`` is ``U_ij = psi_j + Delta_i + upsilon_i * X``, ``X ~ N(0, 1)``:
``psi_j`` the item's true quality, ``Delta_i`` the rater's bias (a harsh TA has a negative one), ``upsilon_i`` the
rater's inconsistency (a careless rater's is large, so their scores weigh less). It is solved by the published
alternating projections (the algorithm of SUREAL's ``SubjectMLEModelProjectionSolver``); the biases are shifted to
mean zero so ``psi`` stays on the raters' average use of the 1..5 scale. :func:`fit_subject_model` reproduces the
published example of SUREAL's test suite (``tests/course_tests/mos/test_mos_model.py``).

Intervals (:func:`bootstrap_versions`): the raters *and* the images are resampled with replacement and the model is
refitted each time; the 2.5 and 97.5 percentiles of a version's MOS over the resamples are its 95 % interval. Ratings
of one rater, or of one image, are not independent, so resampling individual ratings would be optimistic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ModelConfig", "fit_subject_model", "version_means", "bootstrap_versions"]


@dataclass(frozen=True)
class ModelConfig:
    """How the model is fitted and bootstrapped.

    ``min_inconsistency``: floor of each rater's ``upsilon`` when weighting (integer scores carry a rounding noise of
    sd ≈ 0.29, so nobody is more consistent than that; without a floor one straight-liner would outweigh the panel).
    ``resamples``: bootstrap resamples; ``seed`` makes the intervals reproducible.
    """

    min_inconsistency: float = 0.25
    max_iter: int = 1000
    tol: float = 1e-8
    resamples: int = 200
    seed: int = 0
    level: float = 0.95


def fit_subject_model(x: np.ndarray, min_inconsistency: float = 0.0, max_iter: int = 1000,
                      tol: float = 1e-8) -> dict:
    """Fit the subject model to ``x``, a ``(items, raters)`` float array of scores, NaN where a rater did not rate an
    item. Returns ``{"quality": (items,), "bias": (raters,), "inconsistency": (raters,), "iterations": int}``
    (float64; an item nobody rated has NaN quality, a rater with no rating NaN bias)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"fit_subject_model: expected an (items, raters) matrix, got shape {x.shape}")
    seen = ~np.isnan(x)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        quality = np.nanmean(x, axis=1)
        bias = np.nanmean(x - quality[:, None], axis=0)
        inconsistency = np.zeros(x.shape[1])
        it = 0
        for it in range(1, max_iter + 1):
            previous = quality
            residual = x - quality[:, None] - bias[None, :]
            inconsistency = np.nanstd(residual, axis=0)
            v = np.maximum(np.nan_to_num(inconsistency, nan=1.0), min_inconsistency)
            w = np.where(seen, 1.0 / (v ** 2 + 1e-8)[None, :], 0.0)
            debiased = np.where(seen, x - bias[None, :], 0.0)
            quality = (w * debiased).sum(axis=1) / w.sum(axis=1)
            bias = np.nanmean(x - quality[:, None], axis=0)
            if np.linalg.norm(np.nan_to_num(previous - quality)) < tol:
                break
        shift = np.nanmean(bias)
    return {"quality": quality + shift, "bias": bias - shift, "inconsistency": inconsistency, "iterations": it}


class _quiet:
    """Silence NumPy's 'mean of empty slice' warnings (an item or rater with no rating is expected)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def version_means(quality: np.ndarray, item_version: np.ndarray, item_image: np.ndarray, n_versions: int,
                  image_weights: np.ndarray | None = None) -> np.ndarray:
    """``(n_versions,)`` mean item quality per version over its images (NaN items skipped). ``item_version`` and
    ``item_image`` are ``(items,)`` int indices; ``image_weights`` ``(images,)`` counts how often each image is drawn
    (a bootstrap resample; default once each)."""
    w = np.ones(item_image.max() + 1) if image_weights is None else image_weights
    wi = np.where(np.isnan(quality), 0.0, w[item_image])
    num = np.bincount(item_version, weights=np.nan_to_num(quality) * wi, minlength=n_versions)
    den = np.bincount(item_version, weights=wi, minlength=n_versions)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def bootstrap_versions(x: np.ndarray, item_version: np.ndarray, item_image: np.ndarray, n_versions: int,
                       config: ModelConfig = ModelConfig(), raw: bool = False) -> np.ndarray:
    """``(resamples, n_versions)`` version MOS over bootstrap resamples of raters (columns of ``x``) and images,
    both with replacement. ``raw``: the plain mean of the ratings instead of the model (for the raw-mean column)."""
    rng = np.random.default_rng(config.seed)
    n_raters, n_images = x.shape[1], int(item_image.max()) + 1
    out = np.full((config.resamples, n_versions), np.nan)
    for b in range(config.resamples):
        cols = rng.integers(0, n_raters, n_raters)
        draws = np.bincount(rng.integers(0, n_images, n_images), minlength=n_images).astype(np.float64)
        xb = x[:, cols]
        if raw:
            with _quiet():
                q = np.nanmean(xb, axis=1)
            seen = (~np.isnan(xb)).sum(axis=1).astype(np.float64)
            # the raw MOS weighs every rating alike: an item's mean weighted by its number of ratings
            out[b] = _rating_weighted(q, seen, item_version, item_image, n_versions, draws)
        else:
            q = fit_subject_model(xb, config.min_inconsistency, config.max_iter, 1e-6)["quality"]
            out[b] = version_means(q, item_version, item_image, n_versions, draws)
    return out


def _rating_weighted(q, seen, item_version, item_image, n_versions, draws):
    w = seen * draws[item_image]
    num = np.bincount(item_version, weights=np.nan_to_num(q) * w, minlength=n_versions)
    den = np.bincount(item_version, weights=w, minlength=n_versions)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
