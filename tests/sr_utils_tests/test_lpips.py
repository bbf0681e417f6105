"""LPIPS, offline-safe: the package's shipped linear layers plus a local AlexNet file (here one with random
weights: the ImageNet file cannot be downloaded on the test machine), a clear message and never a download when
the file is missing; the evaluate command's column and the trainer's validation metric."""
from __future__ import annotations

import csv
import importlib.util
import os

import numpy as np
import pytest
import torch

from course.reference import load_reference
from sr_utils.lpips_metric import BACKBONE_ENV, LPIPSMetric, find_lpips_backbone
from course_fixtures import sample_data

# (lpips is imported where it is used: its import loads torchvision, ~1.5 s of CPU in every test process that
# collects this module)
pytestmark = pytest.mark.skipif(importlib.util.find_spec("lpips") is None,
                                reason="lpips is not installed (pip install -e '.[test]')")


@pytest.fixture()
def no_download(monkeypatch, tmp_path):
    def refuse(*a, **k):
        raise AssertionError("LPIPS tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(BACKBONE_ENV, raising=False)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    """An AlexNet ``features.*`` state_dict with random weights (the layout of torchvision's file)."""
    import torchvision

    torch.manual_seed(0)
    state = {k: v for k, v in torchvision.models.alexnet(weights=None).state_dict().items()
             if k.startswith("features.")}
    path = tmp_path_factory.mktemp("weights") / "alexnet-owt-7be5be79.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return sample_data(tmp_path_factory.mktemp("data"))


def test_missing_backbone_says_where_to_put_it_and_never_downloads(no_download, tmp_path):
    assert find_lpips_backbone() is None
    with pytest.raises(FileNotFoundError, match=BACKBONE_ENV) as err:
        LPIPSMetric()
    assert str(tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth") in str(err.value)
    assert "download.pytorch.org" in str(err.value)


def test_loads_the_shipped_layers_and_the_local_backbone(no_download, backbone, monkeypatch):
    monkeypatch.setenv(BACKBONE_ENV, str(backbone))
    assert find_lpips_backbone() == backbone
    metric = LPIPSMetric()
    import lpips

    shipped = torch.load(os.path.join(os.path.dirname(lpips.__file__), "weights/v0.1/alex.pth"), map_location="cpu",
                         weights_only=True)
    ours = metric.model.state_dict()
    for key, value in shipped.items():
        assert torch.equal(ours[key], value), f"{key} is not the package's shipped layer"
    file = torch.load(backbone, weights_only=True)
    assert torch.equal(getattr(metric.model.net.slice1, "0").weight, file["features.0.weight"])
    assert torch.equal(getattr(metric.model.net.slice5, "10").weight, file["features.10.weight"])
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)

    def noisy(sigma):
        return np.clip(hr + rng.normal(0, sigma, hr.shape), 0, 255).astype(np.uint8)

    assert metric.distance(hr, hr) == 0.0
    assert 0 < metric.distance(noisy(5), hr) < metric.distance(noisy(60), hr)
    with pytest.raises(ValueError, match="uint8"):
        metric.distance(hr.astype(np.float32), hr)


def test_evaluate_and_validation_report_lpips(no_download, backbone, monkeypatch, tmp_path, data_dir):
    from sr_utils.__main__ import main
    from sr_utils.trainer import TrainConfig, train

    monkeypatch.setenv(BACKBONE_ENV, str(backbone))
    models, solver = load_reference()
    cfg = TrainConfig(stage="srresnet", data_dir=str(data_dir), iterations=2, n_channels=8, n_blocks=1, crop_size=32,
                      batch_size=4, val_every=2, workers=0, val_images=1, patches_per_image=3, amp=False,
                      val_lpips=True)
    out = train(cfg, tmp_path / "run", models, solver, progress=False, log=lambda *a: None)
    assert 0 < out["history"][-1]["val_lpips"] and 0 < out["history"][-1]["val_ssim"] <= 1
    assert main(["evaluate", "--checkpoint", f"tiny={tmp_path / 'run' / 'best.pth'}", "--data-dir", str(data_dir),
                 "--out", str(tmp_path / "eval"), "--lpips"], default_modules=load_reference) == 0
    rows = list(csv.DictReader(open(tmp_path / "eval" / "table.csv")))
    assert {r["method"] for r in rows} == {"bicubic", "tiny"} and all(float(r["lpips"]) > 0 for r in rows)
    assert "| lpips |" in (tmp_path / "eval" / "table.md").read_text()
    monkeypatch.delenv(BACKBONE_ENV)
    assert main(["evaluate", "--data-dir", str(data_dir), "--out", str(tmp_path / "e2"), "--lpips"],
                default_modules=load_reference) == 2, "a missing backbone is a clear error, not a traceback"
