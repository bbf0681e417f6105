"""Intake survives any tree and any name: generated classes of submissions (seeded, so a failure replays) with
folders nested 1,500 levels deep, thousands of files, links, FIFOs, oversized files, names with control
characters, trailing newlines, very long or non-ASCII names, and hostile student ids. Each bad submission is
refused with its reason, every good one is collected whole, nothing raises, and no record carries a control
character. The same for an LMS zip with hostile member names, and for ``course/submitted/`` as the grading
command reads it."""
from __future__ import annotations

import io
import json
import os
import random
import zipfile
from pathlib import Path

import pytest

from course import intake
from course.grading.collection import DEFAULT_LMS_REGEXP, intake_submitted
from course.jupyter import handin

ASSIGNMENT = "superres"
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
CONTROL = ["\n", "\t", "\x1b", "\r", "\x7f", "\x01"]


def _good_handin(folder: Path) -> set[str]:
    """A complete hand-in; returns its relative paths."""
    files = {"01_models.ipynb": NOTEBOOK, "report.md": b"# report\n", "results/test_table.csv": b"set,psnr\n",
             "submission/samples/baby.png": b"\x89PNG fake", "checkpoints/srresnet/curves.png": b"\x89PNG c",
             "报告图/说明.md": b"not part of a hand-in"}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return {rel for rel in files if handin.travels(rel)}


def _harmless(folder: Path, rng: random.Random) -> None:
    """What never travels and must not cost a submission anything: checkpoints, data, hidden files, a link
    and a FIFO outside the hand-in's folders, an oddly named notes file at the top (left out)."""
    (folder / "checkpoints" / "srresnet").mkdir(parents=True, exist_ok=True)
    (folder / "checkpoints" / "srresnet" / "best.pth").write_bytes(os.urandom(rng.randrange(10, 2000)))
    (folder / "data").mkdir(exist_ok=True)
    os.symlink("/etc/passwd", folder / "data" / "passwd")
    os.mkfifo(folder / "checkpoints" / "pipe")
    (folder / ".hidden").write_bytes(b"x")


def _deep(folder: Path, depth: int) -> None:
    here = folder
    for _ in range(depth):
        here = here / "a"
        here.mkdir()
    (here / "x.png").write_bytes(b"png")


#: Planted faults, each inside the folders a hand-in comes from: (name, plant(folder, rng)).
FAULTS = {
    "deep nesting (1,500 levels)": lambda f, rng: _deep(f / "submission", 1500),
    "deep nesting (40 levels)": lambda f, rng: _deep(f / "results", 40),
    "a link to another student's notebook": lambda f, rng: os.symlink("../../good/01_models.ipynb",
                                                                      f / "02_solver.ipynb"),
    "a link to /etc/shadow as the report": lambda f, rng: (os.unlink(f / "report.md"),
                                                          os.symlink("/etc/shadow", f / "report.md")),
    "a linked submission folder": lambda f, rng: os.symlink("/", f / "submission" / "set5"),
    "a FIFO among the pictures": lambda f, rng: os.mkfifo(f / "submission" / "samples" / "hang.png"),
    "a picture name with a control character": lambda f, rng: (
        f / "submission" / "samples" / f"bab{rng.choice(CONTROL)}y.png").write_bytes(b"png"),
    "a folder name with a trailing newline": lambda f, rng: (
        (f / "results" / "run\n").mkdir(), (f / "results" / "run\n" / "t.csv").write_bytes(b"1")),
    "an oversized notebook": lambda f, rng: os.truncate(f / "01_models.ipynb", handin.MAX_FILE_BYTES + 1),
    "thousands of pictures": lambda f, rng: [(f / "submission" / "samples" / f"{i}.png").write_bytes(b"p")
                                             for i in range(handin.MAX_FILES + 20)],
}

#: Student folder names that are not usable ids: never collected, reported with the name made printable.
BAD_IDS = ["ada\n", "=HYPERLINK(\"x\")", "a b", "\x1b[31mred", "x" * 150, "-rf", "名字", "ada\r"]


def _class(root: Path, seed: int, harmless: bool = True) -> tuple[dict[str, str | None], set[str]]:
    """``root/<student>/superres/``: a good hand-in for every usable id, each with one planted fault or none.
    Returns ({student: planted fault or None}, the good hand-in's paths)."""
    rng = random.Random(seed)
    plan: dict[str, str | None] = {"good": None}
    names = sorted(FAULTS)
    for i in range(12):
        plan[f"s{i:02d}.{seed}@uni"] = rng.choice(names) if rng.random() < 0.75 else None
    for student, fault in plan.items():
        folder = root / student / ASSIGNMENT
        folder.mkdir(parents=True)
        paths = _good_handin(folder)
        if harmless:
            _harmless(folder, rng)
        if fault:
            FAULTS[fault](folder, rng)
    for bad in BAD_IDS:
        (root / bad / ASSIGNMENT).mkdir(parents=True)
        _good_handin(root / bad / ASSIGNMENT)
    return plan, paths


@pytest.fixture(autouse=True)
def _remove_deep_trees(tmp_path):
    """Remove the test's folder without recursion: ``shutil.rmtree`` (pytest's clean-up) recurses once per level
    and fails on the 1,500-level trees made here."""
    yield
    stack, folders = [tmp_path], []
    while stack:
        folder = stack.pop()
        folders.append(folder)
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            else:
                os.unlink(entry.path)
    for folder in reversed(folders):
        os.rmdir(folder)


def _no_control(text: str) -> bool:
    return not handin.has_control_characters(text)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plain_folders_refuse_each_bad_submission_and_collect_every_good_one(tmp_path, seed, capsys):
    src, submitted = tmp_path / "downloads", tmp_path / "submitted"
    plan, good_paths = _class(src, seed)
    students, attention = intake.collect_folders(src, submitted, ASSIGNMENT)
    for student, fault in plan.items():
        if fault is None:
            assert student in students, (student, attention.get(student))
            dest = submitted / student / ASSIGNMENT
            got = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if not p.is_dir()}
            assert got == good_paths, (student, got ^ good_paths)
            assert all(p.is_file() and not p.is_symlink() for p in dest.rglob("*") if not p.is_dir())
        else:
            assert student not in students and student in attention, (student, fault)
            assert attention[student].startswith("refused at intake"), attention[student]
    for key, why in attention.items():
        assert _no_control(key) and _no_control(why), (key, why)
    refused_ids = [k for k in attention if k not in plan]
    assert len(refused_ids) == len(BAD_IDS), refused_ids
    assert not any(os.path.lexists(submitted / bad) for bad in BAD_IDS)
    assert all(_no_control(line) for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize("seed", [4, 5])
def test_the_grading_command_inspects_any_tree_without_raising(tmp_path, seed):
    """``course/submitted/`` as nbgrader's collect leaves it, whole folders included (not only the hand-in)."""
    submitted = tmp_path / "submitted"
    plan, _ = _class(submitted, seed, harmless=False)  # (collect never brings checkpoints or data here)
    (submitted / "deep" / ASSIGNMENT).mkdir(parents=True)
    _good_handin(submitted / "deep" / ASSIGNMENT)
    _deep(submitted / "deep" / ASSIGNMENT / "checkpoints", 1500)  # deep anywhere: inspected, never followed
    ok, refused = intake_submitted(submitted, ASSIGNMENT)
    assert "good" in ok and "deep" in refused and "nested deeper" in refused["deep"], refused.get("deep")
    for key, why in refused.items():
        assert _no_control(key) and _no_control(why), (key, why)
    assert not any(s.startswith(("ada", "\x1b")) or "HYPERLINK" in s for s in ok)


def test_an_lms_zip_with_hostile_member_names_collects_only_the_good_members(tmp_path, capsys):
    rng = random.Random(7)
    members = {"good_1_01_models.ipynb": NOTEBOOK, "good_1_report.md": b"# r",
               "bob_2/superres/submission/samples/baby.png": b"png", "bob_2/superres/01_models.ipynb": NOTEBOOK}
    hostile = ["eve_3_01_models.ipynb\n", "eve_3/superres/submission/samples/a\x1bb.png",
               "eve_3/superres/" + "a/" * 1500 + "x.png", "/etc/eve_3_x.ipynb", "eve_3/../../evil.ipynb",
               "eve_3/superres/results/" + "\u202e" * 3 + "gnp.csv", "ada\n_4_01_models.ipynb",
               "eve_3/superres/submission/" + "名" * 80 + ".png"]
    for i in range(30):  # random bytes as names: whatever they are, nothing raises and nothing escapes
        hostile.append("".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(1, 40))))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in [*members.items(), *[(h, b"x") for h in hostile]]:
            z.writestr(name, data)
    (tmp_path / "lms.zip").write_bytes(buf.getvalue())
    submitted = tmp_path / "submitted"
    students, attention = intake.collect_zip(tmp_path / "lms.zip", submitted, ASSIGNMENT, DEFAULT_LMS_REGEXP)
    assert {"good", "bob"} <= set(students), (students, attention)
    assert (submitted / "good" / ASSIGNMENT / "report.md").read_bytes() == b"# r"
    assert (submitted / "bob" / ASSIGNMENT / "submission" / "samples" / "baby.png").read_bytes() == b"png"
    root = submitted.resolve()
    for path in submitted.rglob("*"):
        assert path.resolve().is_relative_to(root) and not path.is_symlink()
        parts = path.relative_to(submitted).parts
        if path.is_file():
            assert parts[1] == ASSIGNMENT and handin.travels("/".join(parts[2:])), parts
    assert not (tmp_path / "evil.ipynb").exists()
    for key, why in attention.items():
        assert _no_control(key) and _no_control(why), (key, why)
    assert all(_no_control(line) for line in capsys.readouterr().out.splitlines())
