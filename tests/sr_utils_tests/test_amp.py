"""The GPU recipe (fp16 autocast + GradScaler) run on the CPU: steps, a skipped overflowing step, exact resume with
the scaler's state; bf16 and off; the autocast default is restored after a run."""
from __future__ import annotations

import math

import pytest
import torch

from course.reference import load_reference
from sr_utils.amp import amp_plan
from sr_utils.checkpoint import load_checkpoint
from sr_utils.trainer import TrainConfig
from sr_utils.trainer import train as kit_train
from course_fixtures import sample_data

TINY = dict(n_channels=8, n_blocks=1, crop_size=32, batch_size=4, val_every=2, workers=0, lr=1e-3, warmup=0,
            schedule="constant", val_images=1, patches_per_image=3, amp=True, amp_dtype="float16")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return sample_data(tmp_path_factory.mktemp("data"))


def train(cfg, out_dir, **kwargs):
    return kit_train(cfg, out_dir, *load_reference(), progress=False, log=lambda *a: None, **kwargs)


def _strip(history):
    return [{k: v for k, v in row.items() if k != "sec_per_it"} for row in history]


def test_plans():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert amp_plan(False, "float16", cpu).enabled is False
    assert (amp_plan(True, "float16", cpu).dtype, amp_plan(True, "float16", cpu).scaler) == (torch.float16, True)
    assert (amp_plan(True, "bfloat16", cpu).dtype, amp_plan(True, "bfloat16", cpu).scaler) == (torch.bfloat16, False)
    assert (amp_plan(True, "auto", cuda).dtype, amp_plan(True, "auto", cuda).scaler) == (torch.float16, True)


def test_fp16_with_grad_scaler_on_cpu_resumes_exactly(tmp_path, data_dir):
    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=4, **TINY)
    before = torch.get_autocast_dtype("cpu")
    whole = train(cfg, tmp_path / "whole")
    assert torch.get_autocast_dtype("cpu") == before, "the run must restore the autocast default"
    assert whole["amp"] == "float16"
    assert all(math.isfinite(r["mse"]) and r["amp_skipped"] == 0 for r in whole["history"])
    train(cfg, tmp_path / "split", stop_after=2)
    rest = train(cfg, tmp_path / "split", resume=True)
    assert _strip(rest["history"]) == _strip(whole["history"])
    a, b = load_checkpoint(tmp_path / "whole" / "last.pth"), load_checkpoint(tmp_path / "split" / "last.pth")
    assert a["scalers"]["model"]["scale"] == b["scalers"]["model"]["scale"] > 0
    assert a["scalers"]["model"]["_growth_tracker"] == b["scalers"]["model"]["_growth_tracker"] == 4
    for name, value in a["nets"]["model"].items():
        assert torch.equal(value, b["nets"]["model"][name]), name


def test_an_overflowing_step_is_skipped_and_the_scale_halves(tmp_path, data_dir):
    """With a loss scale of 2**40 the fp16 gradients overflow: the scaler skips both steps (Adam has no state, the
    schedule did not advance, the weights are the initial ones) and halves the scale each time."""
    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=2, amp_init_scale=2.0 ** 40, **TINY)
    out = train(cfg, tmp_path / "run")
    assert out["history"][-1]["amp_skipped"] == 2 and out["history"][-1]["amp_scale"] == 2.0 ** 38
    ck = load_checkpoint(tmp_path / "run" / "last.pth")
    assert ck["optimizers"]["model"]["state"] == {}, "a skipped step must not touch Adam's moments"
    assert ck["schedulers"]["model"]["last_epoch"] == 0
    ok = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=2, **TINY)
    stepped = load_checkpoint(train(ok, tmp_path / "ok")["out_dir"] + "/last.pth")
    assert any(not torch.equal(v, stepped["nets"]["model"][k]) for k, v in ck["nets"]["model"].items()), \
        "with the default scale the same steps do change the weights"


def test_srgan_fp16_scalers_for_both_networks(tmp_path, data_dir):
    pre = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=2, **TINY)
    train(pre, tmp_path / "run" / "srresnet")
    cfg = TrainConfig(stage="srgan", data_dir=str(data_dir), iterations=2, d_channels=8, fc_size=16, content="mse",
                      **dict(TINY, crop_size=96, batch_size=2))
    out = train(cfg, tmp_path / "run" / "srgan")
    assert all(math.isfinite(v) for v in out["history"][-1].values())
    ck = load_checkpoint(tmp_path / "run" / "srgan" / "last.pth")
    assert set(ck["scalers"]) == {"model", "discriminator"} and all(s for s in ck["scalers"].values())
