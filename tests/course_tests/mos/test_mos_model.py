"""course.mos.model: the published subject-model example; bias and inconsistency recovered; bootstrap intervals."""
from __future__ import annotations

import numpy as np
import pytest

from course.mos.model import ModelConfig, bootstrap_versions, fit_subject_model


def test_reproduces_sureals_published_example():
    """SUREAL's test suite (``test_dataset_os_as_dict``: 3 stimuli rated by Tom, Jerry, Pinokio) publishes the
    subject model's quality scores 2.444444443 (first stimulus) and 1.444444455 (second)."""
    x = np.array([[3, 4, 1], [2, 1, 3], [4, 1, 3]], dtype=float)
    q = fit_subject_model(x)["quality"]
    assert q[0] == pytest.approx(2.444444443373016, abs=1e-4)
    assert q[1] == pytest.approx(1.44444445515873, abs=1e-4)


def test_recovers_bias_and_inconsistency_of_simulated_raters():
    rng = np.random.default_rng(1)
    truth = rng.uniform(1.5, 4.5, 60)
    bias = np.array([0.0, -0.8, 0.5, 0.2, -0.3, 0.4])
    noise = np.array([0.3, 0.3, 0.3, 0.3, 0.3, 1.5])
    x = truth[:, None] + bias[None, :] + noise[None, :] * rng.normal(size=(60, 6))
    x[rng.random(x.shape) < 0.2] = np.nan
    fit = fit_subject_model(x)
    assert np.corrcoef(fit["bias"], bias - bias.mean())[0, 1] > 0.95
    assert fit["inconsistency"][-1] > 3 * fit["inconsistency"][:-1].max()
    raw_err = np.abs(np.nanmean(x, axis=1) - truth - bias.mean()).mean()
    assert np.abs(fit["quality"] - truth - bias.mean()).mean() < raw_err  # bias-corrected beats the raw mean


def test_bootstrap_over_raters_and_images_covers_the_estimate():
    rng = np.random.default_rng(2)
    items_v = np.repeat(np.arange(3), 5)  # 3 versions x 5 images
    items_i = np.tile(np.arange(5), 3)
    x = (np.array([1.5, 3.0, 4.5])[items_v][:, None] + rng.normal(0, 0.5, (15, 8))).round().clip(1, 5)
    boot = bootstrap_versions(x, items_v, items_i, 3, ModelConfig(resamples=60, seed=0))
    assert boot.shape == (60, 3)
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    assert np.all(lo < hi) and np.all(hi[:2] < lo[1:])  # the three levels are told apart
    assert np.array_equal(boot, bootstrap_versions(x, items_v, items_i, 3, ModelConfig(resamples=60, seed=0)))
