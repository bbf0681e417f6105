"""`prepare` and `samples`: discovery, pair checks that name the file at fault, LR generation, lists, caches."""
from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import BENCHMARK, read_png, require_shared
from data_tools.__main__ import main as data_main
from data_tools.prepare import PairError, find_splits, prepare
from sr_utils.datasets import SREvalDataset
from sr_utils.imresize import imresize


def _save(path: Path, arr: np.ndarray, mode: str | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr)
    if mode:
        im = im.convert(mode)
    im.save(path)


@pytest.fixture()
def benchmark_copy(tmp_path):
    require_shared(BENCHMARK / "Set5")
    dst = tmp_path / "benchmark"
    for s in ("Set5", "Set14"):
        shutil.copytree(BENCHMARK / s / "HR", dst / s / "HR")
        shutil.copytree(BENCHMARK / s / "LR_bicubic", dst / s / "LR_bicubic")
    return dst


def test_prepare_on_matlab_benchmark_yields_the_matlab_pairs(tmp_path):
    require_shared(BENCHMARK / "Set5")
    out = tmp_path / "out"  # ../shared is read-only: lists go elsewhere
    result = prepare(BENCHMARK, edge="replicate", out_dir=out, progress=False)
    assert result["errors"] == [] and result["generated"] == {}
    assert sorted(Path(p).name for p in result["lists"]) == ["Set14_x4.json", "Set5_x4.json"]
    for name, n in (("Set5", 5), ("Set14", 14)):
        ds = SREvalDataset(out / "lists" / f"{name}_x4.json")
        assert len(ds) == n
        for i in range(n):
            img, lr, hr = ds[i]
            matlab_lr = read_png(BENCHMARK / name / "LR_bicubic" / "X4" / f"{img}x4.png")
            matlab_hr = read_png(BENCHMARK / name / "HR" / f"{img}.png")
            if matlab_lr.ndim == 2:  # bridge: grey, replicated to RGB explicitly
                assert np.array_equal(lr, np.repeat(matlab_lr[..., None], 3, 2))
            else:
                assert np.array_equal(lr, matlab_lr), f"{name}/{img}: LR is not the MATLAB file"
            assert np.array_equal(hr[..., 0], matlab_hr if matlab_hr.ndim == 2 else matlab_hr[..., 0])


def test_wrong_sized_lr_is_named(benchmark_copy, tmp_path):
    bad = benchmark_copy / "Set14" / "LR_bicubic" / "X4" / "comicx4.png"
    _save(bad, read_png(bad)[:-1])
    result = prepare(benchmark_copy, progress=False)
    assert len(result["errors"]) == 1 and "comicx4.png" in result["errors"][0]
    assert "expected 62x90" in result["errors"][0]
    # the healthy set is still listed, the broken one is not
    assert [Path(p).name for p in result["lists"]] == ["Set5_x4.json"]
    assert data_main(["prepare", "--data-dir", str(benchmark_copy)]) == 1


def test_missing_lr_folder_is_regenerated_equal_to_matlab(benchmark_copy):
    for s in ("Set5", "Set14"):
        shutil.rmtree(benchmark_copy / s / "LR_bicubic")
    result = prepare(benchmark_copy, edge="replicate", progress=False)
    assert result["errors"] == [] and result["generated"] == {"Set14": 14, "Set5": 5}
    meta = json.loads((benchmark_copy / "lists" / "Set14_x4.json").read_text())
    assert "edge=replicate" in meta["generated_lr_rule"]
    for s in ("Set5", "Set14"):
        for f in sorted((BENCHMARK / s / "LR_bicubic" / "X4").glob("*.png")):
            assert np.array_equal(read_png(benchmark_copy / s / "LR_bicubic" / "X4" / f.name), read_png(f)), f.name


def test_div2k_layout_and_odd_sizes(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    hr = rng.integers(0, 256, (101, 77, 3), dtype=np.uint8)  # odd size: modcropped to 100x76
    _save(root / "DIV2K" / "DIV2K_train_HR" / "0001.png", hr)
    _save(root / "DIV2K" / "DIV2K_valid_HR" / "0801.png", hr[:64, :64])
    _save(root / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X4" / "0801x4.png", imresize(hr[:64, :64], 0.25))
    splits = find_splits(root)
    assert [s.name for s in splits] == ["DIV2K_train", "DIV2K_valid"]
    result = prepare(root, progress=False)
    assert result["errors"] == [] and result["generated"] == {"DIV2K_train": 1}
    lr_file = root / "DIV2K" / "DIV2K_train_LR_bicubic" / "X4" / "0001x4.png"
    assert np.array_equal(read_png(lr_file), imresize(hr[:100, :76], 0.25))
    name, lr, hr_eval = SREvalDataset(root / "lists" / "DIV2K_train_x4.json")[0]
    assert name == "0001" and lr.shape == (25, 19, 3) and hr_eval.shape == (100, 76, 3)
    assert (root / "cache" / "DIV2K_train_x4" / "index.json").exists()
    assert not (root / "cache" / "DIV2K_valid_x4").exists(), "only training splits are cached by default"
    entry = json.loads((root / "lists" / "DIV2K_train_x4.json").read_text())["images"][0]
    assert entry["hr"] == "DIV2K/DIV2K_train_HR/0001.png" and entry["hr_size"] == [100, 76]


def test_grey_rgba_palette_inputs_become_rgb(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "data" / "Mixed"
    rgb = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    _save(root / "HR" / "grey.png", rgb[..., 0])
    _save(root / "HR" / "rgba.png", np.dstack([rgb, np.full((48, 40), 9, np.uint8)]))
    _save(root / "HR" / "palette.png", rgb, mode="P")
    result = prepare(tmp_path / "data", progress=False)
    assert result["errors"] == []
    ds = SREvalDataset(tmp_path / "data" / "lists" / "Mixed_x4.json")
    got = {name: (lr, hr) for name, lr, hr in (ds[i] for i in range(len(ds)))}
    assert set(got) == {"grey", "rgba", "palette"}
    for lr, hr in got.values():
        assert lr.shape == (12, 10, 3) and hr.shape == (48, 40, 3) and lr.dtype == np.uint8
    assert np.array_equal(got["rgba"][1], rgb), "RGBA: alpha is dropped, colour kept"
    assert np.array_equal(got["grey"][1][..., 2], rgb[..., 0])


def test_truncated_png_empty_folder_and_missing_lr_are_named(tmp_path):
    root = tmp_path / "data"
    _save(root / "Broken" / "HR" / "ok.png", np.zeros((32, 32, 3), np.uint8))
    _save(root / "Broken" / "HR" / "cut.png", np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = (root / "Broken" / "HR" / "cut.png").read_bytes()
    (root / "Broken" / "HR" / "cut.png").write_bytes(data[: len(data) // 3])
    (root / "Empty" / "HR").mkdir(parents=True)
    _save(root / "NoLR" / "HR" / "a.png", np.zeros((32, 32, 3), np.uint8))
    result = prepare(root, progress=False)
    errors = "\n".join(result["errors"])
    assert "HR/cut.png" in errors and "ok.png" not in errors
    assert "Empty" in errors and "no PNG" in errors
    assert "NoLR" not in errors, "a missing LR is generated by default"
    shutil.rmtree(root / "NoLR" / "LR_bicubic")
    errors = "\n".join(prepare(root, generate=False, progress=False)["errors"])
    assert "NoLR/LR_bicubic/X4/ax4.png: missing LR" in errors
    with pytest.raises(PairError, match="no dataset found"):
        prepare(tmp_path / "data" / "Empty" / "HR", progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare(tmp_path / "nowhere", progress=False)


def test_samples_offline_then_prepare(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("`samples` must not use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert data_main(["samples", "--data-dir", str(tmp_path)]) == 0
    from data_tools.samples import SAMPLE_TEST, SAMPLE_TRAIN

    test_hr = sorted(p.stem for p in (tmp_path / "samples" / "test" / "HR").glob("*.png"))
    assert test_hr == sorted(SAMPLE_TEST) and len(SAMPLE_TEST) == 5
    assert len(list((tmp_path / "samples" / "train" / "HR").glob("*.png"))) == len(SAMPLE_TRAIN)
    for name in SAMPLE_TEST:
        hr = read_png(tmp_path / "samples" / "test" / "HR" / f"{name}.png")
        lr = read_png(tmp_path / "samples" / "test" / "LR_bicubic" / "X4" / f"{name}x4.png")
        assert np.array_equal(lr, imresize(hr, 0.25)), name
    assert data_main(["prepare", "--data-dir", str(tmp_path)]) == 0
    assert (tmp_path / "lists" / "samples_test_x4.json").exists()
    assert (tmp_path / "cache" / "samples_train_x4" / "hr.u8").exists()
