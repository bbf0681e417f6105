"""The hand-in (course/jupyter/handin.py) through plain folders and LMS zips (course/intake.py): what the course
grades arrives with its relative paths, checkpoints and data never travel, links and oversized files are refused.
Fast: no nbgrader run (the exchange round trip is in test_exchange.py)."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from course.grading.collection import DEFAULT_LMS_REGEXP
from course.intake import collect_folders, collect_zip
from course.jupyter import handin

HANDIN = {
    "01_models.ipynb": b"{}", "05_super_resolution.ipynb": b'{"cells": []}', "report.md": b"# My report\n",
    "results/test_table.csv": b"set,method,psnr,ssim\n", "results/comparison_baby.png": b"\x89PNG fig",
    "submission/set5/baby.png": b"\x89PNG baby", "submission/set5/bird.png": b"\x89PNG bird",
    "checkpoints/srresnet/curves.png": b"\x89PNG curves",
}
NEVER = {"checkpoints/srresnet/best.pth": 11 << 20, "checkpoints/srgan/last.pth": 1000, "data/DIV2K/x.png": 10,
         ".grading-run/results/test_table.csv": 10, "models.py": 10, "solver.py": 10,
         ".ipynb_checkpoints/01_models-checkpoint.ipynb": 10, "notes.txt": 10, "results/scratch.npy": 10}


def _student(folder: Path) -> Path:
    for rel, data in HANDIN.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    for rel, size in NEVER.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        with open(folder / rel, "wb") as f:
            f.truncate(size)
    return folder


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_what_travels_is_declared_once():
    for rel in HANDIN:
        assert handin.travels(rel), rel
    for rel in NEVER:
        assert not handin.travels(rel), rel
    assert not handin.travels("../report.md") and not handin.travels("submission/set5/.x.png")
    # nbgrader's copies (generate_assignment, release, autograde) take notebooks only
    for name in ("checkpoints", "results", "submission", "data", "models.py", "solver.py", "report.md",
                 "report.pdf", ".*"):
        assert name in handin.NBGRADER_IGNORE


def test_plain_folders_keep_relative_paths_and_leave_out_checkpoints(tmp_path, capsys):
    src = tmp_path / "src"
    _student(src / "alice" / "superres")       # <student>/<assignment>/
    _student(src / "bob")                      # <student>/ directly
    os.symlink("/etc", src / "bob" / "data2")  # a link that is no part of the hand-in: left out, not refused
    students, attention = collect_folders(src, tmp_path / "submitted", "superres")
    assert students == ["alice", "bob"] and attention == {}
    for student in students:
        assert _tree(tmp_path / "submitted" / student / "superres") == HANDIN, student
    log = capsys.readouterr().out
    assert log.count("left out") == 1 and "checkpoints/" in log and "data/" in log and "models.py" in log


def test_plain_folders_refuse_links_special_files_and_oversized_hand_in_files(tmp_path):
    src = tmp_path / "src"
    for name in ("linked", "fifo", "big", "linked_dir", "linked_assignment"):
        _student(src / name)
    (src / "linked" / "report.md").unlink()
    os.symlink("/etc/shadow", src / "linked" / "report.md")
    os.mkfifo(src / "fifo" / "submission" / "set5" / "head.png")
    (src / "big" / "02_solver.ipynb").write_bytes(b"x" * (handin.MAX_FILE_BYTES + 1))
    os.symlink("/etc", src / "linked_dir" / "submission" / "set14")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", src / "linked_assignment" / "superres")
    students, attention = collect_folders(src, tmp_path / "submitted", "superres")
    assert students == []
    assert "report.md: a symbolic link" in attention["linked"]
    assert "submission/set5/head.png: a FIFO" in attention["fifo"]
    assert "02_solver.ipynb" in attention["big"] and "more than 10 MB" in attention["big"]
    assert "submission/set14: a symbolic link" in attention["linked_dir"]
    assert "superres: a symbolic link" in attention["linked_assignment"]
    assert not (tmp_path / "submitted").exists() or not any((tmp_path / "submitted").iterdir())


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_an_lms_zip_keeps_relative_paths_and_leaves_out_checkpoints(tmp_path, capsys):
    members = {f"download/alice/superres/{rel}": data for rel, data in HANDIN.items()}       # a folder per student
    members.update({f"download/alice/superres/{rel}": b"x" for rel in NEVER if not rel.startswith(".")})
    members.update({f"bob_1203_4501_{rel}": data for rel, data in HANDIN.items() if "/" not in rel})  # Canvas
    members["carol_7_assignsubmission_file_/submission/set5/baby.png"] = b"\x89PNG c"  # Moodle-like folder
    members["carol_7_assignsubmission_file_/01_models.ipynb"] = b"{}"
    students, attention = collect_zip(_zip(tmp_path / "d.zip", members), tmp_path / "submitted", "superres",
                                      DEFAULT_LMS_REGEXP)
    assert students == ["alice", "bob", "carol"] and attention == {}, attention
    assert _tree(tmp_path / "submitted" / "alice" / "superres") == HANDIN
    assert _tree(tmp_path / "submitted" / "bob" / "superres") == {k: v for k, v in HANDIN.items() if "/" not in k}
    assert _tree(tmp_path / "submitted" / "carol" / "superres") == {"01_models.ipynb": b"{}",
                                                                    "submission/set5/baby.png": b"\x89PNG c"}
    log = capsys.readouterr().out
    assert log.count("left out") == 1 and "checkpoints/" in log


def test_an_lms_zip_still_refuses_links_traversal_and_oversized_members(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("alice/superres/01_models.ipynb", "{}")
        info = zipfile.ZipInfo("alice/superres/submission/set5/baby.png")
        info.external_attr = 0o120777 << 16  # a symbolic link member
        z.writestr(info, "/etc/shadow")
        z.writestr("bob/superres/../../../tmp/x/report.md", "x")
        z.writestr("carol/superres/01_models.ipynb", "{}")
        z.writestr("carol/superres/submission/set5/baby.png", b"x" * 2048)
    (tmp_path / "d.zip").write_bytes(buf.getvalue())
    students, attention = collect_zip(tmp_path / "d.zip", tmp_path / "submitted", "superres", DEFAULT_LMS_REGEXP,
                                      max_member_bytes=1024)
    assert "link" in attention["alice"] and any("'..' path" in why for why in attention.values())
    assert "submission/set5/baby.png" in attention["carol"] and "more than" in attention["carol"]
    assert students == ["alice", "carol"]
    assert _tree(tmp_path / "submitted" / "alice" / "superres") == {"01_models.ipynb": b"{}"}
    assert not Path("/tmp/x/report.md").exists()


def test_the_report_is_found_and_a_linked_one_does_not_count(tmp_path):
    assert handin.report_status(tmp_path)["file"] == ""
    (tmp_path / "report.pdf").write_bytes(b"%PDF")
    assert handin.report_status(tmp_path) == {"file": "report.pdf", "bytes": 4, "also": ""}
    os.symlink("/etc/passwd", tmp_path / "report.md")
    assert handin.report_status(tmp_path)["file"] == "report.pdf"


def test_both_nbgrader_configurations_use_the_declaration():
    """The instructor's collect and the students' submit copy the hand-in; release and autograde take notebooks."""
    from traitlets.config.loader import PyFileConfigLoader

    repo = Path(__file__).resolve().parents[2]
    teacher = PyFileConfigLoader("nbgrader_config.py", path=str(repo)).load_config()
    assert teacher.ExchangeFactory.collect == "sr_kit_handin.HandinCollect"
    assert list(teacher.CourseDirectory.ignore) == handin.NBGRADER_IGNORE
    assert "course.grading.report_cell.ShowReport" in teacher.Autograde.autograde_preprocessors
    student = PyFileConfigLoader("nbgrader_config.py", path=str(repo / "course" / "jupyter")).load_config()
    assert student.ExchangeFactory.submit == "sr_kit_handin.HandinSubmit"
    assert {"checkpoints", "data"} <= set(student.CourseDirectory.ignore)
    import sys

    assert sys.modules["sr_kit_handin"].HandinSubmit.__name__ == "HandinSubmit"
