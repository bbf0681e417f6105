"""imresize against MATLAB's own outputs: every LR of ../shared/data/benchmark, pixel for pixel."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import benchmark_images, read_png, require_shared, BENCHMARK
from sr_utils.imresize import imresize

CASES = ([("Set5", "LR_bicubic", "replicate", *c) for c in benchmark_images("Set5")]
         + [("Set14", "LR_bicubic", "replicate", *c) for c in benchmark_images("Set14")]
         + [("Set5", "LR_bicubic_symmetric", "symmetric", *c) for c in benchmark_images("Set5", "LR_bicubic_symmetric")])


def test_benchmark_cases_were_found():
    require_shared(BENCHMARK)
    # 5 + 14 images with the replicate rule, 5 with the symmetric one; bridge is single-channel.
    assert len(CASES) == 24, f"expected 24 MATLAB LR files under {BENCHMARK}, found {len(CASES)}"
    assert any(read_png(c[4]).ndim == 2 for c in CASES), "Set14/bridge should be a single-channel PNG"


@pytest.mark.parametrize("set_name,folder,edge,name,hr_path,lr_path", CASES,
                         ids=[f"{c[0]}-{c[3]}-{c[2]}" for c in CASES])
def test_equals_matlab_bit_for_bit(set_name, folder, edge, name, hr_path, lr_path):
    hr, lr = read_png(hr_path), read_png(lr_path)
    out = imresize(hr, 1 / 4, edge=edge)
    assert out.dtype == np.uint8 and out.shape == lr.shape, f"{name}: got {out.shape} {out.dtype}, MATLAB {lr.shape}"
    wrong = np.count_nonzero(out != lr)
    assert wrong == 0, f"{set_name}/{name} ({edge}): {wrong} of {lr.size} values differ from MATLAB's {folder}"


def test_wrong_edge_rule_is_detected(benchmark_dir):
    """The two packs really differ near the border, so the test above can tell the edge rules apart."""
    hr = read_png(benchmark_dir / "Set5" / "HR" / "baby.png")
    lr = read_png(benchmark_dir / "Set5" / "LR_bicubic" / "X4" / "babyx4.png")
    diff = imresize(hr, 1 / 4, edge="symmetric") != lr
    assert diff.any(), "symmetric and replicate edges gave the same LR: the edge rule is not applied"
    inner = diff[2:-2, 2:-2]
    assert not inner.any(), "edge rules must only change pixels within 2 px of the LR border"
