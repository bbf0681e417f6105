"""The one trainer: it trains the modules it is given (the student's epoch functions do every step), exact resume,
schedules, the data order, model selection on the validation split, SRGAN-MSE fallback; the command line."""
from __future__ import annotations

import csv
import dataclasses

import pytest
import torch

from course.reference import load_reference, reference_sources
from sr_utils.checkpoint import load_checkpoint
from sr_utils.trainer import PROFILES, ResumableSampler, TrainConfig, lr_lambda
from sr_utils.trainer import train as kit_train
from course_fixtures import sample_data

TINY = dict(n_channels=8, n_blocks=1, crop_size=32, batch_size=4, val_every=2, workers=0, lr=1e-3, warmup=2,
            schedule="cosine", val_images=1, patches_per_image=3, amp=False)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return sample_data(tmp_path_factory.mktemp("data"))


def train(cfg, out_dir, **kwargs):
    """The trainer with the reference solution's modules."""
    return kit_train(cfg, out_dir, *load_reference(), **kwargs)


def _strip(history):
    return [{k: v for k, v in row.items() if k != "sec_per_it"} for row in history]


def test_resume_continues_exactly(tmp_path, data_dir):
    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=6, **TINY)
    whole = train(cfg, tmp_path / "whole", progress=False, log=lambda *a: None)
    first = train(cfg, tmp_path / "split", stop_after=4, progress=False, log=lambda *a: None)
    assert first["step"] == 4
    rest = train(cfg, tmp_path / "split", resume=True, progress=False, log=lambda *a: None)
    assert rest["step"] == 6
    assert _strip(rest["history"]) == _strip(whole["history"]), "losses after resume differ from one run"
    a, b = load_checkpoint(tmp_path / "whole" / "last.pth"), load_checkpoint(tmp_path / "split" / "last.pth")
    for net, state in a["nets"].items():
        for name, value in state.items():
            assert torch.equal(value, b["nets"][net][name]), f"{net}.{name} differs after resume"
    assert a["optimizers"]["model"]["state"].keys() == b["optimizers"]["model"]["state"].keys()
    for k, st in a["optimizers"]["model"]["state"].items():
        assert torch.equal(st["exp_avg"], b["optimizers"]["model"]["state"][k]["exp_avg"])
    # what the run leaves behind
    for name in ("last.pth", "best.pth", "log.csv", "curves.png"):
        assert (tmp_path / "whole" / name).is_file(), name
    rows = list(csv.DictReader(open(tmp_path / "whole" / "log.csv")))
    assert [int(r["step"]) for r in rows] == [2, 4, 6] and all(r["val_psnr"] for r in rows)


def test_learning_rate_schedules():
    cfg = TrainConfig(iterations=100, warmup=10, schedule="step", decay_at=[0.5], gamma=0.1)
    f = lr_lambda(cfg)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(49) == 1.0 and f(50) == pytest.approx(0.1) and f(99) == pytest.approx(0.1)
    f = lr_lambda(dataclasses.replace(cfg, schedule="multistep", decay_at=[0.3, 0.6]))
    assert f(20) == 1.0 and f(30) == pytest.approx(0.1) and f(60) == pytest.approx(0.01)
    f = lr_lambda(dataclasses.replace(cfg, schedule="cosine"))
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_lambda(dataclasses.replace(cfg, schedule="linear"))(50)


def test_sampler_state_and_ranks():
    s = ResumableSampler(10, seed=3)
    full = list(s)
    assert sorted(full) == list(range(10))
    s.set_state(0, 4)
    assert list(s) == full[4:], "resuming mid-epoch continues the same order"
    s.set_state(1, 0)
    assert list(s) != full, "each epoch is shuffled anew"
    ranks = [list(ResumableSampler(10, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == sorted(full) and not set(ranks[0]) & set(ranks[1])


def test_srgan_needs_vgg_weights_or_says_use_mse(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("SR_VGG19_WEIGHTS", str(tmp_path / "absent.pth"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    pre = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=2, **TINY)
    train(pre, tmp_path / "run" / "srresnet", progress=False, log=lambda *a: None)
    gan = dict(TINY, crop_size=96, batch_size=2)
    cfg = TrainConfig(stage="srgan", data_dir=str(data_dir), iterations=2, d_channels=8, fc_size=16, **gan)
    with pytest.raises(FileNotFoundError, match="content=mse"):
        train(cfg, tmp_path / "run" / "srgan", progress=False, log=lambda *a: None)
    out = train(dataclasses.replace(cfg, content="mse"), tmp_path / "run" / "srgan", progress=False,
                log=lambda *a: None)
    assert out["step"] == 2 and {"content", "adversarial", "discriminator"} <= set(out["history"][-1])


def test_evaluate_command_writes_tables(tmp_path, data_dir):
    from sr_utils.__main__ import main

    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=2, **TINY)
    train(cfg, tmp_path / "run" / "srresnet", progress=False, log=lambda *a: None)
    assert main(["evaluate", "--checkpoint", f"SRResNet={tmp_path / 'run' / 'srresnet' / 'last.pth'}",
                 "--data-dir", str(data_dir), "--out", str(tmp_path / "eval")], default_modules=load_reference) == 0
    rows = list(csv.DictReader(open(tmp_path / "eval" / "table.csv")))
    assert {r["method"] for r in rows} == {"bicubic", "SRResNet"}
    bicubic = [float(r["psnr"]) for r in rows if r["method"] == "bicubic"][0]
    assert 25 < bicubic < 32
    tex = (tmp_path / "eval" / "table.tex").read_text()
    assert "\\begin{tabular}" in tex and "shaved" in tex
    assert "shaved" in (tmp_path / "eval" / "table.md").read_text()
    per_image = list(csv.DictReader(open(tmp_path / "eval" / "per_image.csv")))
    assert len(per_image) == 2 * 5


def test_trains_the_modules_it_is_given(tmp_path, data_dir):
    """The student's epoch function does every step: the trainer calls it on chunks of val_every batches."""
    import types

    models, solver = load_reference()
    calls = []

    def spy_epoch(model, loader, optimizer, device, amp=False, scaler=None):
        batches = list(loader)
        calls.append(len(batches))
        return solver.train_srresnet_epoch(model, batches, optimizer, device, amp=amp, scaler=scaler)

    student = types.SimpleNamespace(train_srresnet_epoch=spy_epoch)
    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=5, **TINY)
    out = kit_train(cfg, tmp_path / "run", models, student, progress=False, log=lambda *a: None)
    assert calls == [2, 2, 1] and out["step"] == 5


def test_best_is_chosen_on_the_validation_split_not_a_test_set(tmp_path, data_dir):
    from sr_utils.datasets import SREvalDataset
    from sr_utils.lists import test_lists

    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=2, **TINY)
    out = train(cfg, tmp_path / "run", progress=False, log=lambda *a: None)
    best = load_checkpoint(tmp_path / "run" / "best.pth")
    assert best["arch"] == "SRResNet" and best["val_list"] == out["val_list"]
    assert best["val_split"] == out["val_split"] == "samples_val"
    val = SREvalDataset(out["val_list"])
    tests = [SREvalDataset(p) for p in test_lists(data_dir).values()]
    def names(ds):
        return {im["name"] for im in ds.images}

    train_names = names(SREvalDataset(data_dir / "lists" / "samples_train_x4.json"))
    val_names = names(val)
    assert val.split == "samples_val" and val_names
    assert not val_names & train_names, "validation photos must be held out of training"
    assert all(not val_names & names(t) for t in tests), "validation must not use a test photo"


def test_profiles_cover_both_stages_and_grading_is_tiny():
    for name, stages in PROFILES.items():
        assert set(stages) == {"srresnet", "srgan"}, name
        for stage in stages:
            assert TrainConfig.from_profile(name, stage).stage == stage
    tiny = TrainConfig.from_profile("grading", "srresnet")
    assert tiny.iterations <= 5 and tiny.n_blocks <= 2
    with pytest.raises(ValueError, match="unknown setting"):
        TrainConfig.from_profile("cpu-small", "srresnet", epochs=3)
    with pytest.raises(ValueError, match="unknown profile"):
        TrainConfig.from_profile("laptop", "srresnet")


def test_command_line_trains_the_students_modules(tmp_path, data_dir, monkeypatch):
    """`python -m sr_utils train-srresnet --models PATH --solver PATH` with files a student wrote; without them it
    says which file is missing."""
    from sr_utils.__main__ import main

    student = tmp_path / "student"
    student.mkdir()
    for name, text in reference_sources().items():
        (student / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no models.py"):
        main(["train-srresnet", "--profile", "grading", "--data-dir", str(data_dir)])
    assert main(["train-srresnet", "--profile", "grading", "--data-dir", str(data_dir), "--out", str(tmp_path / "ck"),
                 "--models", str(student / "models.py"), "--solver", str(student / "solver.py")]) == 0
    ck = load_checkpoint(tmp_path / "ck" / "srresnet" / "best.pth")
    assert ck["arch"] == "SRResNet" and ck["config"]["n_blocks"] == PROFILES["grading"]["srresnet"]["n_blocks"]
