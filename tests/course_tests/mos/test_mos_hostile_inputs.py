"""Collection that cannot be fooled: the originals (or near copies) are refused, a non-finite reported PSNR is
flagged, and no CSV the study or the class results write can carry a live spreadsheet formula."""
from __future__ import annotations

import csv
import math

import numpy as np

from mos_fixtures import make_class, make_study, sample_ref, save, student_image  # noqa: F401 (fixture)

FORMULA = '=HYPERLINK("evil.example";"x")'  # a folder name cannot hold a slash


def test_safe_cell_neutralises_formulas_but_keeps_numbers():
    from course.mos.csvsafe import safe_cell

    assert safe_cell(FORMULA) == "'" + FORMULA
    for bad in ("+1+1", "-cmd", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(bad).startswith("'")
    assert safe_cell(-0.5) == -0.5 and safe_cell("-0.5") == "-0.5" and safe_cell("alice") == "alice"
    assert safe_cell(math.nan) == ""


def test_near_copies_of_the_originals_are_refused_honest_outputs_are_not(sample_ref):
    from course.mos.collect import bicubic
    from course.mos.plausibility import implausible

    rng = np.random.default_rng(0)
    for name in sample_ref.names:
        lr, hr = sample_ref.lr[name], sample_ref.hr[name]
        up = bicubic(lr, sample_ref.scale)
        assert "identical to the HR original" in implausible(hr, lr, hr, up, sample_ref.scale)
        noisy = np.clip(hr.astype(np.int16) + rng.integers(-1, 2, hr.shape), 0, 255).astype(np.uint8)
        assert "dB from the HR original" in implausible(noisy, lr, hr, up, sample_ref.scale)
        assert implausible(student_image(sample_ref, name, 3), lr, hr, up, sample_ref.scale) is None
        assert implausible(up[::-1], lr, hr, up, sample_ref.scale).startswith("is not consistent with its LR")


def test_collection_csv_is_formula_safe_and_lists_refusals(sample_ref, tmp_path):
    from course.mos.__main__ import main

    root = tmp_path / "class"
    make_class(sample_ref, root)
    (root / FORMULA).mkdir()
    data = sample_ref.list_file.parent.parent
    assert main(["collect", "--from", str(root), "--study", str(tmp_path / "study"), "--data-dir", str(data),
                 "--calibration", "1", "--seed", "0"]) == 0
    raw = (tmp_path / "study" / "collection.csv").read_text()
    assert "\n=" not in raw and "'=HYPERLINK" in raw
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "study" / "collection.csv"))}
    assert "identical to the HR original" in rows["oscar"]["reason"] and rows["oscar"]["status"] == "left out"
    assert "not consistent with its LR image" in rows["peggy"]["reason"]


def test_class_results_flag_non_finite_reported_numbers_and_are_formula_safe(sample_ref, tmp_path):
    from course.class_results import class_table, write_class_results

    root = tmp_path / "class"
    folders = make_class(sample_ref, root)
    table = folders["alice"].parent.parent / "results" / "test_table.csv"
    table.parent.mkdir(parents=True)
    table.write_text("set,method,psnr,ssim\nsamples_test,SRGAN,nan,0.5\n")
    (root / FORMULA).mkdir()
    study = make_study(sample_ref, tmp_path / "study", students=("alice",), peer=False, n_calibration=0)
    rows = class_table(root, sample_ref, study.folder)
    alice = next(r for r in rows if r["student"] == "alice")
    assert alice["flag"] == "NOT FINITE" and "not a finite number" in alice["note"]
    paths = write_class_results(rows, [], sample_ref.label, tmp_path / "out")
    raw = paths["csv"].read_text()
    assert "\n=" not in raw and "'=HYPERLINK" in raw
