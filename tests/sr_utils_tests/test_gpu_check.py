"""`python -m sr_utils gpu-check`: passes with a working solver (here on the CPU, the same fp16 + GradScaler recipe),
exits 1 when a loss is not finite."""
from __future__ import annotations

import types

import pytest

from course.reference import load_reference
from sr_utils.__main__ import main
from course_fixtures import sample_data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return sample_data(tmp_path_factory.mktemp("data"))


def test_gpu_check_passes_with_the_reference(data_dir, capsys):
    assert main(["gpu-check", "--data-dir", str(data_dir), "--iterations", "2"], default_modules=load_reference) == 0
    out = capsys.readouterr().out
    assert "gpu-check: PASSED" in out and "stop at 1 + resume = one run" in out and "it/s" in out
    assert out.count("[ok]") == 6 and "FAIL" not in out


def test_gpu_check_fails_on_a_nan_loss(data_dir, capsys):
    models, solver = load_reference()

    def nan_epoch(model, loader, optimizer, device, amp=False, scaler=None):
        solver.train_srresnet_epoch(model, loader, optimizer, device, amp=amp, scaler=scaler)
        return float("nan")

    broken = types.SimpleNamespace(train_srresnet_epoch=nan_epoch, train_srgan_epoch=solver.train_srgan_epoch)
    assert main(["gpu-check", "--data-dir", str(data_dir), "--iterations", "2"],
                default_modules=lambda: (models, broken)) == 1
    out = capsys.readouterr().out
    assert "[FAIL] finite losses" in out and "gpu-check: FAILED" in out
