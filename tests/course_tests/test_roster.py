"""The class roster (``course.roster``): checked as a whole, every bad line named with its number, imported in one
transaction or not at all."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from course.roster import RosterError, import_roster, read_roster

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, text: str, bom: bool = False) -> Path:
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def test_a_good_roster_in_any_script_is_read_as_written(tmp_path):
    roster = _write(tmp_path / "r.csv", 'id,first_name,last_name,email\n'
                                        'zhang.wei,伟,张,zw@example.edu.cn\n'
                                        '\n'
                                        'ada,"Ada ""Countess""",Lovelace,\n'
                                        '2024001,,李,\n', bom=True)
    students = read_roster(roster)
    assert [(s.id, s.first_name, s.last_name, s.email) for s in students] == [
        ("zhang.wei", "伟", "张", "zw@example.edu.cn"), ("ada", 'Ada "Countess"', "Lovelace", None),
        ("2024001", None, "李", None)]
    assert [s.id for s in read_roster(REPO / "course" / "roster.example.csv")] == ["reference"]


@pytest.mark.parametrize("line, problem", [
    ("ada lovelace,Ada,Lovelace,", "is not a usable student id"),
    ("ada\x07,Ada,Lovelace,", "control character in id"),
    ("bob,Bob\u202e,Smith,", "control character in first_name"),
    ("ada,Ada,Again,", "'ada' is already on line 2"),
    ("carol,,,", "the name is empty"),
    ("dan,Dan,Brown,dan.example.org", "is not an address"),
    ("erin,Erin", "2 fields, the header has 4"),
    ("../etc,Eve,Hacker,", "is not a usable student id"),
])
def test_a_bad_line_is_named_and_nothing_is_read(tmp_path, line, problem):
    roster = _write(tmp_path / "r.csv", f"id,first_name,last_name,email\nada,Ada,Lovelace,\n{line}\nzoe,Zoe,Li,\n")
    with pytest.raises(RosterError) as e:
        read_roster(roster)
    assert e.value.problems and e.value.problems[0][0] == 3 and problem in e.value.problems[0][1], e.value.problems
    assert "line 3:" in str(e.value) and "nothing imported" in str(e.value)


def test_every_bad_line_is_listed_with_its_own_number(tmp_path):
    roster = _write(tmp_path / "r.csv", 'id,first_name,last_name\nok,O,K\n"x y",X,Y\nmulti,"two\nlines",Z\n'
                                        'ok,O,K\n\ttab,T,T\n')
    with pytest.raises(RosterError) as e:
        read_roster(roster)
    assert [n for n, _ in e.value.problems] == [3, 4, 6, 7], e.value.problems  # (4: a line break in a field)


@pytest.mark.parametrize("text, problem", [("name,email\nada,a@b\n", "unknown column(s) 'name'"),
                                           ("first_name\nAda\n", "no 'id' column"),
                                           ("", "no header line")])
def test_a_bad_header_is_named(tmp_path, text, problem):
    with pytest.raises(RosterError, match="line 1: ") as e:
        read_roster(_write(tmp_path / "r.csv", text))
    assert problem in str(e.value)


def test_import_is_all_or_nothing(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.delenv("SR_KIT_GRADEBOOK_URL", raising=False)
    course = tmp_path / "course"
    (course / "course").mkdir(parents=True)
    good = _write(tmp_path / "good.csv", "id,first_name,last_name,email\nada,Ada,Lovelace,ada@example.org\n"
                                         "wei,伟,张,\n")
    assert [s.id for s in import_roster(course, good)] == ["ada", "wei"]
    bad = _write(tmp_path / "bad.csv", "id,first_name,last_name,email\nada,Augusta,King,\nnew,New,One,\n"
                                        "wei,,,\n")
    with pytest.raises(RosterError, match="line 4: wei: the name is empty"):
        import_roster(course, bad)
    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
        names = {s.id: (s.first_name, s.last_name, s.email) for s in gb.students}
    assert names == {"ada": ("Ada", "Lovelace", "ada@example.org"), "wei": ("伟", "张", None)}, names
    fixed = _write(tmp_path / "fixed.csv", "id,first_name,last_name,email\nada,Augusta,King,\nnew,New,One,\n")
    import_roster(course, fixed)
    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
        names = {s.id: (s.first_name, s.last_name, s.email) for s in gb.students}
    assert names == {"ada": ("Augusta", "King", None), "wei": ("伟", "张", None), "new": ("New", "One", None)}


def test_the_command_checks_and_names_the_line(tmp_path):
    bad = _write(tmp_path / "bad.csv", "id,first_name\nada,Ada\nada,Ada\n")
    out = subprocess.run([sys.executable, "-m", "course.roster", str(bad), "--check"], capture_output=True, text=True)
    assert out.returncode == 1 and "line 3: id 'ada' is already on line 2" in out.stderr, out.stderr
    good = _write(tmp_path / "good.csv", "id,first_name\nada,Ada\n")
    out = subprocess.run([sys.executable, "-m", "course.roster", str(good), "--check"], capture_output=True, text=True)
    assert out.returncode == 0 and "1 student (checked; nothing imported)" in out.stdout, out.stderr
