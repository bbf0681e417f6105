"""PSNR/SSIM against MATLAB's numbers and the published bicubic baselines (../shared/data/benchmark)."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from conftest import BENCHMARK, read_png, require_shared
from sr_utils.color import rgb_to_y, to_uint8
from sr_utils.imresize import imresize
from sr_utils.metrics import evaluate_sr, psnr, ssim, to_y_uint8_levels


def _matlab_rows():
    f = BENCHMARK / "matlab_bicubic_x4_per_image.csv"
    return list(csv.DictReader(f.open())) if f.exists() else []


ROWS = _matlab_rows()


def test_matlab_table_is_complete():
    require_shared(BENCHMARK / "matlab_bicubic_x4_per_image.csv")
    assert {r["set"] for r in ROWS} == {"Set5", "Set14"} and len(ROWS) == 19


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['set']}-{r['image']}" for r in ROWS])
def test_evaluate_sr_reproduces_matlab_per_image(row):
    """Convention A3: MATLAB bicubic x4 of the LR file, uint8 Y, shave 4."""
    hr = read_png(BENCHMARK / row["set"] / "HR" / f"{row['image']}.png")
    lr = read_png(BENCHMARK / row["set"] / "LR_bicubic" / "X4" / f"{row['image']}x4.png")
    p, s = evaluate_sr(imresize(lr, 4), hr, 4)
    assert abs(p - float(row["psnr_y"])) < 1e-4, f"PSNR {p:.6f} vs MATLAB {row['psnr_y']}"
    assert abs(s - float(row["ssim_y"])) < 1e-4, f"SSIM {s:.6f} vs MATLAB {row['ssim_y']}"


def _c4(set_name: str) -> tuple[float, float]:
    """Convention C4 (published tables): uint8 Y of HR, float MATLAB resize /4 then x4, round, shave 4."""
    ps, ss = [], []
    for f in sorted((BENCHMARK / set_name / "HR").glob("*.png")):
        hr = read_png(f)
        y = to_uint8(rgb_to_y(hr)).astype(np.float64) if hr.ndim == 3 else hr.astype(np.float64)
        sr = to_uint8(imresize(imresize(y, 1 / 4), 4)).astype(np.float64)
        ps.append(psnr(sr, y, 4))
        ss.append(ssim(sr, y, 4))
    return float(np.mean(ps)), float(np.mean(ss))


@pytest.mark.parametrize("set_name,pub_psnr,pub_ssim", [("Set5", 28.42, 0.8104), ("Set14", 26.00, None)])
def test_published_bicubic_means(set_name, pub_psnr, pub_ssim):
    require_shared(BENCHMARK / set_name)
    p, s = _c4(set_name)
    assert abs(p - pub_psnr) <= 0.005 + 1e-9, f"{set_name} bicubic PSNR {p:.4f}, published {pub_psnr}"
    if pub_ssim is not None:
        assert abs(s - pub_ssim) < 5e-5, f"{set_name} bicubic SSIM {s:.5f}, published {pub_ssim}"


def _ssim_index_transcription(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s MATLAB ssim_index written out: fspecial('gaussian', 11, 1.5), filter2(..., 'valid')."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.arange(-5, 6)
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()

    def filt(z):
        return np.einsum("ijkl,kl->ij", sliding_window_view(z, (11, 11)), g)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = filt(a), filt(b)
    s11, s22, s12 = filt(a * a) - mu1**2, filt(b * b) - mu2**2, filt(a * b) - mu1 * mu2
    return float(np.mean(((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))))


def test_ssim_is_matlab_ssim_index_formula():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 57)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    assert abs(ssim(a, b) - _ssim_index_transcription(a, b)) < 1e-9
    assert abs(ssim(a, b, crop_border=4) - _ssim_index_transcription(a[4:-4, 4:-4], b[4:-4, 4:-4])) < 1e-9


def test_psnr_known_values():
    a = np.zeros((10, 10), np.uint8)
    b = np.full((10, 10), 255, np.uint8)  # uint8 must not wrap around
    assert psnr(a, b) == pytest.approx(0.0)
    assert psnr(a, a) == math.inf
    c = a.astype(np.float64)
    c[0, 0] = 10  # MSE = 1
    assert psnr(a, c) == pytest.approx(10 * math.log10(255 ** 2))
    assert psnr(a, c, crop_border=1) == math.inf  # the differing pixel is in the shaved border
    flat = np.full((16, 16), 100.0)
    assert ssim(flat, flat) == pytest.approx(1.0)
    assert ssim(flat, flat + 50) < 1.0


@pytest.mark.parametrize("fn", [psnr, ssim])
def test_metric_errors(fn):
    with pytest.raises(ValueError, match="differ in size"):
        fn(np.zeros((20, 20)), np.zeros((20, 21)))
    with pytest.raises(ValueError, match="2-D"):
        fn(np.zeros((20, 20, 3)), np.zeros((20, 20, 3)))
    with pytest.raises(ValueError, match="nothing left|at least 11"):
        fn(np.zeros((12, 12)), np.zeros((12, 12)), crop_border=6)


def test_evaluate_sr_convention():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (50, 46, 3), dtype=np.uint8)
    sr = np.clip(hr[:48, :44].astype(np.float64) + rng.normal(0, 8, (48, 44, 3)), 0, 255)
    # SR is quantised first: a float SR scores as its uint8 rounding
    assert evaluate_sr(sr, hr, 4) == evaluate_sr(to_uint8(sr), hr, 4)
    # HR cropped top-left to the SR size; the same as cropping it by hand
    assert evaluate_sr(sr, hr, 4) == evaluate_sr(sr, hr[:48, :44], 4)
    # grey images are their own Y
    g_hr, g_sr = hr[:48, :44, 0], to_uint8(sr[..., 0])
    assert evaluate_sr(g_sr, g_hr, 4)[0] == pytest.approx(psnr(g_sr, g_hr, 4))
    # the Y used is MATLAB's rounded luma
    assert np.array_equal(to_y_uint8_levels(hr), to_uint8(rgb_to_y(hr)))
    with pytest.raises(ValueError, match="multiple of 4"):
        evaluate_sr(sr[:40], hr, 4)
    with pytest.raises(ValueError, match="channels"):
        evaluate_sr(sr[..., 0], hr[:48, :44], 4)


def test_rgb_psnr_would_differ_from_y_psnr():
    """Guard against evaluating on RGB by mistake: the convention gives a different number."""
    rng = np.random.default_rng(2)
    hr = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    sr = to_uint8(hr + rng.normal(0, 10, hr.shape))
    rgb = psnr(sr.reshape(48, -1), hr.reshape(48, -1), 0)
    assert abs(evaluate_sr(sr, hr, 4)[0] - rgb) > 1.0
