"""course.class_results (the class's table and perception-distortion plot) and course.mos.scripted_study (the end of
`make demo`)."""
from __future__ import annotations

import csv
import math
import subprocess

import numpy as np
import pytest

from mos_fixtures import REPO_ROOT, make_class, make_study, sample_ref, student_image  # noqa: F401 (fixture)


def _write_table(folder, split, psnr, ssim):
    (folder / "results").mkdir(parents=True, exist_ok=True)
    with open(folder / "results" / "test_table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["set", "method", "psnr", "ssim"])
        w.writeheader()
        w.writerow({"set": split, "method": "bicubic", "psnr": 1.0, "ssim": 0.1})
        w.writerow({"set": split, "method": "SRGAN", "psnr": psnr, "ssim": ssim})


def test_recomputed_psnr_beside_reported_with_flags_and_mos(sample_ref, tmp_path):
    from sr_utils.metrics import evaluate_sr

    from course.mos.store import AnswerStore
    from course.class_results import class_table, landmarks, write_class_results

    folders = make_class(sample_ref, tmp_path / "class")
    # what alice's and bob's images really score, computed here image by image with the kit's metric
    truth = {s: np.mean([evaluate_sr(student_image(sample_ref, n, 3 + k), sample_ref.hr[n], 4)[0]
                         for n in sample_ref.names]) for k, s in enumerate(["alice", "bob"])}
    _write_table(folders["alice"].parent.parent, "samples_test", truth["alice"] + 0.01, 0.5)  # honest
    _write_table(folders["bob"].parent.parent, "samples_test", truth["bob"] + 0.8, 0.5)  # inflated
    study = make_study(sample_ref, tmp_path / "study", students=("alice", "bob"), peer=False, n_calibration=0)
    store = AnswerStore(study.db_path)
    for rater, order in study.meta["orders"].items():
        for item in order:
            v = study.meta["items"][item]["version"]
            store.answer(rater, item, {"control:hr": 5, "control:nn": 1, "student:alice": 4}.get(v, 2))
    rows = {r["student"]: r for r in class_table(tmp_path / "class", sample_ref, study.folder)}
    assert rows["alice"]["psnr"] == pytest.approx(truth["alice"]) and rows["alice"]["flag"] == ""
    assert rows["alice"]["psnr_diff"] == pytest.approx(0.01, abs=1e-9) and rows["alice"]["mos"] == 4.0
    assert rows["bob"]["flag"] == "DIFFERS" and rows["bob"]["psnr_diff"] == pytest.approx(0.8)
    assert rows["bob"]["mos"] == 2.0
    assert "no results/test_table.csv" in rows["carol"]["note"] and "not in the MOS study" in rows["carol"]["note"]
    assert "missing" in rows["erin"]["note"] and rows["erin"]["psnr"] == ""
    assert "symbolic link" in rows["mallory"]["note"]
    marks = {m["name"]: m for m in landmarks(sample_ref, study.folder)}
    assert marks["bicubic"]["mos"] == 2.0 and marks["HR"]["mos"] == 5.0 and math.isinf(marks["HR"]["psnr"])
    assert 20 < marks["bicubic"]["psnr"] < 40
    paths = write_class_results(list(rows.values()), list(marks.values()), sample_ref.label, tmp_path / "out")
    table = {r["student"]: r for r in csv.DictReader(open(paths["csv"]))}
    assert table["bob"]["flag"] == "DIFFERS" and table["alice"]["split"].startswith("bundled sample photos")
    assert "DIFFERS" in paths["md"].read_text() and "bundled sample photos" in paths["html"].read_text()
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def _tiny_checkpoint(path, generator: bool):
    import torch

    from sr_utils.checkpoint import save_checkpoint

    from course.reference import load_reference

    models, _ = load_reference()
    kwargs = {"n_channels": 8, "n_blocks": 1}
    torch.manual_seed(0)
    net = (models.Generator if generator else models.SRResNet)(**kwargs)
    save_checkpoint(path, model=net.state_dict(), arch=type(net).__name__, model_kwargs=kwargs)


def test_demo_study_on_a_demo_like_folder(sample_ref, tmp_path, monkeypatch, capsys):
    """`python -m course.mos demo OUT` on a folder shaped like the demo's outputs (tiny untrained models)."""
    from PIL import Image

    demo = tmp_path / "demo"
    for name in sample_ref.names:
        (demo / "submission" / sample_ref.folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(student_image(sample_ref, name, 2)).save(demo / "submission" / sample_ref.folder / f"{name}.png")
    _tiny_checkpoint(demo / "srresnet" / "best.pth", generator=False)
    _tiny_checkpoint(demo / "srgan" / "best.pth", generator=True)
    from course.mos.__main__ import main

    monkeypatch.setenv("SR_DATA_DIR", str(sample_ref.list_file.parent.parent))
    assert main(["demo", str(demo)]) == 0  # what `make demo` runs last
    assert f"MOS results page of the demo study: {demo / 'mos' / 'results' / 'mos.html'}" in capsys.readouterr().out
    rows = {r["version"]: r for r in csv.DictReader(open(demo / "mos" / "results" / "mos.csv"))}
    assert set(rows) == {"student:student-blur", "student:student-noise", "student:student-jpeg",
                         "reference:srresnet", "reference:srgan", "control:nn", "control:bicubic", "control:hr"}
    assert all(int(r["n"]) == 2 * len(sample_ref.names) for r in rows.values())  # two scripted raters
    assert float(rows["control:hr"]["mos"]) > float(rows["control:bicubic"]["mos"]) > float(rows["control:nn"]["mos"])


def test_make_targets_run_the_documented_commands():
    out = subprocess.run(["make", "-n", "mos-collect", "mos-serve", "mos-results", "class-results",
                          "MOS_ARGS=--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for cmd in ("-m course.mos collect superres --help", "-m course.mos serve superres --help",
                "-m course.mos results superres --help", "-m course.class_results superres --help"):
        assert cmd in out.stdout, cmd
    import re

    assert re.search(r"^test: .*\bbrowser-tools\b", (REPO_ROOT / "Makefile").read_text(), re.M)
