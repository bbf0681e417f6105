"""course.mos.collect and course.mos.study: hostile submissions get their reasons, the others are frozen blinded."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import BENCHMARK, require_shared
from mos_fixtures import EXPECTED, make_class, sample_ref, student_image  # noqa: F401 (fixture)


def test_each_bad_submission_gets_its_reason_and_the_others_are_collected(sample_ref, tmp_path):
    from course.mos.collect import collect

    make_class(sample_ref, tmp_path / "class")
    got = collect(tmp_path / "class", sample_ref, log=lambda *_: None)
    assert sorted(got.accepted) == sorted(s for s, why in EXPECTED.items() if why is None)
    assert set(got.rejected) == {s for s, why in EXPECTED.items() if why is not None}
    for student, words in EXPECTED.items():
        if words:
            assert words in got.rejected[student], (student, got.rejected[student])
    for images in got.accepted.values():
        assert sorted(images) == sorted(sample_ref.names)
        assert all(img.dtype == np.uint8 and img.ndim == 3 for img in images.values())


def test_plain_layout_from_dir_and_a_lone_valid_student(sample_ref, tmp_path):
    """``--from DIR`` with DIR/<student>/submission/<folder> (no assignment folder) works the same."""
    from course.mos.collect import collect

    for k, student in enumerate(["x1", "x2"]):
        for name in sample_ref.names:
            path = tmp_path / student / "submission" / sample_ref.folder / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(student_image(sample_ref, name, 5 + k)).save(path)
    got = collect(tmp_path, sample_ref, log=lambda *_: None)
    assert sorted(got.accepted) == ["x1", "x2"] and not got.rejected


def test_a_decompression_bomb_an_oversized_file_and_a_fifo_are_refused(sample_ref, tmp_path, monkeypatch):
    from course.mos import collect as mod

    name = sample_ref.names[0]
    folder = tmp_path / "eve" / "submission" / sample_ref.folder
    folder.mkdir(parents=True)
    for other in sample_ref.names[1:]:
        Image.fromarray(student_image(sample_ref, other, 7)).save(folder / f"{other}.png")
    Image.new("RGB", (5000, 5000)).save(folder / f"{name}.png")  # 25 Mpx > MAX_PIXELS
    got = mod.collect(tmp_path, sample_ref, log=lambda *_: None)
    assert "pixels (refused before decoding)" in got.rejected["eve"]
    Image.fromarray(student_image(sample_ref, name, 7)).save(folder / f"{name}.png")
    assert mod.collect(tmp_path, sample_ref, log=lambda *_: None).accepted.keys() == {"eve"}
    monkeypatch.setattr(mod, "MAX_FILE_BYTES", 1000)
    assert "byte limit" in mod.collect(tmp_path, sample_ref, log=lambda *_: None).rejected["eve"]
    (folder / f"{name}.png").unlink()
    os.mkfifo(folder / f"{name}.png")  # opening it must neither block nor be read
    assert "not a regular file" in mod.collect(tmp_path, sample_ref, log=lambda *_: None).rejected["eve"]


def test_freeze_copies_blinds_and_orders_per_rater(sample_ref, tmp_path):
    from course.mos.collect import collect
    from course.mos.study import CONTROLS, calibration_pairs, freeze, load_study

    folders = make_class(sample_ref, tmp_path / "class")
    got = collect(tmp_path / "class", sample_ref, log=lambda *_: None)
    calib = calibration_pairs(sample_ref.list_file.parent.parent, n=2)
    study = freeze(tmp_path / "study", sample_ref, got.accepted, ["instructor"], peer=True, calibration=calib, seed=3)
    meta = study.meta
    assert meta["versions"][-3:] == list(CONTROLS) and meta["split"].startswith("bundled sample photos")
    n_images = len(sample_ref.names)
    n_raters = len(meta["raters"])
    # students, 3 controls, the degraded gold item; 3 repeated items per rater under their own ids
    assert len(meta["items"]) == (len(got.accepted) + 4) * n_images + 3 * n_raters
    assert len(meta["calibration"]) == 4 and [c["score"] for c in meta["calibration"]] == [1, 5, 1, 5]
    # every rater sees every item once, in their own order; a student never sees their own images
    for rater, order in meta["orders"].items():
        own = meta["own_version"][rater]
        assert len(order) == len(set(order))
        assert {meta["items"][i]["version"] for i in order} == set(meta["versions"]) - {own} | {"gold:degraded"}
        repeats = [i for i in order if "repeat_of" in meta["items"][i]]
        assert len(repeats) == 3
        for rid in repeats:  # the same pixels, shown after the original, never next to it
            original = meta["items"][rid]["repeat_of"]
            assert order.index(rid) > order.index(original) + 1
            assert (study.folder / "images" / f"{rid}.png").read_bytes() == \
                (study.folder / "images" / f"{original}.png").read_bytes()
    assert meta["orders"]["alice"] != meta["orders"]["bob"]
    # ids are opaque: no student id in an item id or an image file name
    for item_id in meta["items"]:
        assert not any(s in item_id for s in got.accepted)
        assert (study.folder / "images" / f"{item_id}.png").is_file()
    assert sorted(os.listdir(study.folder / "images")) == sorted(f"{i}.png" for i in meta["items"])
    # the tokens are private and distinct
    assert (os.stat(study.folder / "raters.json").st_mode & 0o077) == 0
    assert len(set(study.tokens.values())) == len(study.tokens) == 4
    # the study is a copy: changing a submission afterwards changes nothing
    alice_item = next(i for i, it in meta["items"].items() if it == {"version": "student:alice",
                                                                        "image": sample_ref.names[0]})
    before = (study.folder / "images" / f"{alice_item}.png").read_bytes()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folders["alice"] / f"{sample_ref.names[0]}.png")
    assert (study.folder / "images" / f"{alice_item}.png").read_bytes() == before
    assert np.array_equal(np.asarray(Image.open(study.folder / "images" / f"{alice_item}.png")),
                          got.accepted["alice"][sample_ref.names[0]])
    assert load_study(study.folder).meta == meta
    assert (study.folder / ".gitignore").read_text() == "*\n"  # students' images and tokens never reach git
    with pytest.raises(FileExistsError):
        freeze(tmp_path / "study", sample_ref, got.accepted, ["instructor"])
    with pytest.raises(ValueError, match="rater name"):
        freeze(tmp_path / "other", sample_ref, got.accepted, ["ta\tx"])


def test_calibration_uses_training_photos_nn_and_hr(sample_ref):
    from course.mos.study import calibration_pairs

    data = sample_ref.list_file.parent.parent
    train = json.loads((data / "lists" / "samples_train_x4.json").read_text())
    pairs = calibration_pairs(data, n=2, size=64)
    assert len(pairs) == 2
    for nn, hr in pairs:
        assert nn.shape == hr.shape == (64, 64, 3)
        assert np.array_equal(nn[::4, ::4].repeat(4, 0).repeat(4, 1), nn)  # blocky: nearest neighbour
        assert not np.array_equal(nn, hr)
    assert train["split"] == "samples_train"


def test_set5_is_used_and_named_when_prepared(tmp_path):
    """With ../shared's Set5 prepared in the data folder, the study uses it and calls it Set5."""
    require_shared(BENCHMARK / "Set5" / "HR")
    from data_tools.prepare import prepare

    from course.mos.collect import reference_set

    data = tmp_path / "data"
    shutil.copytree(BENCHMARK / "Set5", data / "Set5", ignore=shutil.ignore_patterns("LR_bicubic_symmetric"))
    prepare(data, progress=False)
    ref = reference_set(data)
    assert ref.label == "Set5" and ref.is_set5
    assert sorted(ref.names) == ["baby", "bird", "butterfly", "head", "woman"]
    assert all(ref.hr[n].shape[:2] == tuple(4 * s for s in ref.lr[n].shape[:2]) for n in ref.names)


def test_reference_arguments(tmp_path):
    from course.mos.references import parse_reference_args

    ck = tmp_path / "last.pth"
    ck.write_bytes(b"x")
    assert parse_reference_args([f"SRGAN={ck}"]) == {"srgan": ck}
    for bad in ("SRGAN", f"bad name={ck}", f"srgan={tmp_path / 'absent.pth'}", f"../x={ck}"):
        with pytest.raises(ValueError, match="NAME=CHECKPOINT"):
            parse_reference_args([bad])


def test_balanced_peer_assignment_bounds_each_raters_load(sample_ref, tmp_path):
    """A target of 2 raters per student: each student is rated by exactly 2 distinct raters, never by themselves,
    and the loads differ by at most one student."""
    from course.mos.study import freeze

    students = {f"s{k}": {n: student_image(sample_ref, n, 3 + k) for n in sample_ref.names} for k in range(5)}
    study = freeze(tmp_path / "study", sample_ref, students, ["instructor"], peer=True, seed=1, per_student=2,
                   repeats=0)
    meta = study.meta
    rated_by = {s: set() for s in students}
    load = {}
    for rater, order in meta["orders"].items():
        mine = {meta["items"][i]["version"] for i in order if meta["items"][i]["version"].startswith("student:")}
        load[rater] = len(mine)
        assert f"student:{rater}" not in mine
        for v in mine:
            rated_by[v.split(":", 1)[1]].add(rater)
        assert {"control:nn", "control:hr", "gold:degraded"} <= {meta["items"][i]["version"] for i in order}
    assert all(len(r) == 2 for r in rated_by.values())
    assert max(load.values()) - min(load.values()) <= 1
    with pytest.raises(ValueError, match="ratings-per-student 9"):
        freeze(tmp_path / "s2", sample_ref, students, ["instructor"], peer=True, per_student=9)
