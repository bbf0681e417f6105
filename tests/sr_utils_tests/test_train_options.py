"""The options students reach for, each doing what docs/training.md says: L1 pixel loss (passed to the student's
solver), a separate discriminator rate, reduce-on-plateau, cosine with restarts, generator pre-training in the SRGAN
stage, an EMA of the generator's weights, realistic degradation; settings are checked."""
from __future__ import annotations

import types

import pytest
import torch

from course.reference import load_reference
from sr_utils.checkpoint import load_checkpoint
from sr_utils.schedules import Plateau, lr_lambda
from sr_utils.trainer import TrainConfig
from sr_utils.trainer import train as kit_train
from course_fixtures import sample_data

TINY = dict(n_channels=8, n_blocks=1, crop_size=32, batch_size=4, val_every=2, workers=0, lr=1e-3,
            schedule="constant", val_images=1, patches_per_image=3, amp=False)
GAN = dict(TINY, crop_size=96, batch_size=2, d_channels=8, fc_size=16, content="mse", stage="srgan")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return sample_data(tmp_path_factory.mktemp("data"))


def train(cfg, out_dir, solver=None, **kwargs):
    models, reference = load_reference()
    return kit_train(cfg, out_dir, models, solver or reference, progress=False, log=lambda *a: None, **kwargs)


def _strip(history):
    return [{k: v for k, v in row.items() if k != "sec_per_it"} for row in history]


def test_settings_are_checked():
    for bad, match in ((dict(pixel_loss="l2"), "pixel_loss"), (dict(schedule="linear"), "schedule"),
                       (dict(ema_decay=1.0), "ema_decay"), (dict(lr_d=-1.0), "lr_d"),
                       (dict(degradation="jpeg"), "degradation"), (dict(g_pretrain=5), "g_pretrain")):
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad).check()


def test_cosine_with_restarts_and_plateau_schedule():
    f = lr_lambda(TrainConfig(iterations=100, warmup=0, schedule="cosine-restarts", restart_every=25))
    assert f(0) == f(25) == f(50) == pytest.approx(1.0) and f(12) == pytest.approx(0.5, abs=0.07)
    assert f(24) < 0.01 and f(49) < 0.01
    p = Plateau(gamma=0.5, patience=2, min_factor=0.25)
    assert [p.update(v) for v in (20.0, 21.0, 20.5, 20.9)] == [False, False, False, True] and p.factor == 0.5
    assert [p.update(v) for v in (20.0, 20.0)] == [False, True] and p.factor == 0.25
    assert [p.update(v) for v in (20.0, 20.0)] == [False, False] and p.factor == 0.25, "never below min_factor"
    q = Plateau()
    q.load_state_dict(p.state_dict())
    assert q.state_dict() == p.state_dict()


def test_plateau_drops_the_rate_and_resumes_exactly(tmp_path, data_dir):
    """A rate too small to help: the validation PSNR does not improve (patience 1), so the rate halves after each
    validation; the drop applies from the next step, so the log shows it one row later."""
    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=6, **dict(
        TINY, lr=1e-9, schedule="plateau", plateau_patience=1, gamma=0.5, val_every=2))
    whole = train(cfg, tmp_path / "whole")
    lrs = [r["lr"] for r in whole["history"]]
    assert lrs[:2] == [pytest.approx(1e-9)] * 2 and lrs[2] == pytest.approx(0.5e-9)
    train(cfg, tmp_path / "split", stop_after=2)
    rest = train(cfg, tmp_path / "split", resume=True)
    assert _strip(rest["history"]) == _strip(whole["history"])


def test_l1_is_passed_to_the_students_solver(tmp_path, data_dir):
    models, reference = load_reference()
    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=2, pixel_loss="l1", **TINY)
    with pytest.raises(ValueError, match="pixel_loss=\"mse\""):
        train(cfg, tmp_path / "no", reference)
    seen = []

    def epoch(model, loader, optimizer, device, amp=False, scaler=None, pixel_loss="mse"):
        seen.append(pixel_loss)
        model.train()
        for lr, hr in loader:
            loss = torch.nn.functional.l1_loss(model(lr.to(device)), hr.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return loss.item()

    out = train(cfg, tmp_path / "yes", types.SimpleNamespace(train_srresnet_epoch=epoch))
    assert seen == ["l1"] and "l1" in out["history"][0] and "mse" not in out["history"][0]


def test_discriminator_rate_and_generator_pretraining(tmp_path, data_dir):
    """g_pretrain=2 of 4: the first chunk is the student's pixel-loss epoch on the generator alone (D untouched),
    then G and D alternate; the discriminator's Adam runs at lr_d."""
    cfg = TrainConfig(data_dir=str(data_dir), iterations=4, g_pretrain=2, lr_d=1e-5, srresnet_checkpoint="none",
                      **dict(GAN, val_every=4))
    out = train(cfg, tmp_path / "gan")
    first, second = out["history"]
    assert set(first) >= {"mse"} and "adversarial" not in first and {"content", "adversarial"} <= set(second)
    ck = load_checkpoint(tmp_path / "gan" / "last.pth")
    assert ck["optimizers"]["discriminator"]["param_groups"][0]["lr"] == pytest.approx(1e-5)
    assert ck["optimizers"]["model"]["param_groups"][0]["lr"] == pytest.approx(1e-3)
    adam_d = ck["optimizers"]["discriminator"]["state"]
    assert int(next(iter(adam_d.values()))["step"]) == 2, "D steps only after the generator's pre-training"


def test_ema_weights_are_validated_saved_and_resumed(tmp_path, data_dir):
    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=4, ema_decay=0.9, **TINY)
    whole = train(cfg, tmp_path / "whole")
    ck = load_checkpoint(tmp_path / "whole" / "last.pth")
    weight = next(k for k in ck["model"] if k.endswith("weight"))
    assert torch.equal(ck["model"][weight], ck["ema"][weight])
    assert not torch.equal(ck["model"][weight], ck["nets"]["model"][weight]), "best/last `model` is the average"
    train(cfg, tmp_path / "split", stop_after=2)
    rest = train(cfg, tmp_path / "split", resume=True)
    assert _strip(rest["history"]) == _strip(whole["history"])
    assert torch.equal(load_checkpoint(tmp_path / "split" / "last.pth")["ema"][weight], ck["ema"][weight])


def test_realistic_degradation(tmp_path, data_dir):
    from sr_utils.degradation import batch_generator, degrade

    hr = torch.rand(2, 3, 64, 64) * 2 - 1
    a, b = degrade(hr, 4, batch_generator(0, 7)), degrade(hr, 4, batch_generator(0, 7))
    assert a.shape == (2, 3, 16, 16) and a.dtype == torch.float32 and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b), "a pure function of (seed, iteration)"
    assert not torch.equal(a, degrade(hr, 4, batch_generator(0, 8)))
    clean = torch.nn.functional.interpolate((hr + 1) / 2, scale_factor=0.25, mode="bicubic", antialias=True)
    assert (a - clean).abs().mean() > 0.005, "blur, noise and JPEG change the LR"
    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=2, degradation="realistic", **TINY)
    out = train(cfg, tmp_path / "real")
    assert out["step"] == 2 and out["val_split"] == "samples_val"
    assert _strip(out["history"]) == _strip(train(cfg, tmp_path / "again")["history"]), "same pairs on a rerun"
