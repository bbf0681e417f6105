"""benchmark-inference: parameters, FLOPs from PyTorch's counter (checked against a hand count), times untiled and
tiled, the files and the report's figure. No timed assertion: figures live in benchmarks/."""
from __future__ import annotations

import csv

import pytest
import torch

from course.reference import load_reference
from sr_utils.__main__ import main
from sr_utils.checkpoint import save_checkpoint
from sr_utils.speed import count_flops, count_parameters


def test_flops_and_parameters_match_a_hand_count():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert count_parameters(conv) == 3 * 8 * 9 + 8
    assert count_flops(conv, (10, 12)) == 2 * 3 * 8 * 9 * 10 * 12  # a multiply-add is 2 FLOPs
    models, _ = load_reference()
    net = models.SRResNet(n_channels=8, n_blocks=1)
    small, big = count_flops(net, (16, 16)), count_flops(net, (32, 32))
    assert big == 4 * small, "FLOPs grow with the number of LR pixels"
    from sr_utils.speed import SIZES

    frame = count_flops(net, SIZES["1080p frame (LR 480x270)"])
    assert frame == small * (480 * 270) // (16 * 16)


def test_benchmark_inference_command_and_report(tmp_path, monkeypatch):
    """The command on a tiny network; the 1080p frame is replaced by a small one to keep the test fast (its FLOPs
    are checked above, its time is a benchmark's job)."""
    import sr_utils.speed

    monkeypatch.setattr(sr_utils.speed, "SIZES", {"Set5-sized (LR 128x128)": (128, 128), "small (LR 96x54)": (54, 96)})
    from sr_utils.report import write_report

    models, _ = load_reference()
    kwargs = dict(n_channels=8, n_blocks=1, scaling_factor=4)
    ck = save_checkpoint(tmp_path / "checkpoints" / "srresnet" / "best.pth", arch="SRResNet", model_kwargs=kwargs,
                         model=models.SRResNet(**kwargs).state_dict())
    out = tmp_path / "results"
    assert main(["benchmark-inference", str(ck), "--repeats", "1", "--tile", "64", "--out", str(out)],
                default_modules=load_reference) == 0
    rows = list(csv.DictReader(open(out / "inference_speed.csv")))
    assert [r["sr"] for r in rows] == ["512x512", "384x216"]
    assert all(float(r["ms_untiled"]) > 0 and float(r["ms_tiled"]) > 0 for r in rows)
    assert float(rows[0]["gflops"]) == pytest.approx(128 * 128 / (54 * 96) * float(rows[1]["gflops"]), rel=1e-6)
    assert (out / "inference_speed.png").stat().st_size > 5000
    report = write_report(tmp_path / "checkpoints").read_text()
    assert "## 6. Inference speed" in report and "](../results/inference_speed.png)" in report
