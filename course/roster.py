"""The class roster: read and checked as a whole, then imported into the gradebook in one transaction.

    python -m course.roster ROSTER.csv [--course-dir DIR] [--check]

A roster is a CSV file (UTF-8; the byte-order mark spreadsheet programs write is accepted) with a header line naming
``id`` and any of ``first_name``, ``last_name``, ``email``, ``lms_user_id`` (``course/roster.example.csv``), one
student per line. Names in any script are welcome (``张,伟``). A roster with any bad line is refused as a whole,
every bad line named with its number and what is wrong, and nothing is written: an id that is not a usable student
id (:mod:`course.student_id`: spaces, slashes, control characters, ...), an id already on an earlier line, an empty
name where the roster has name columns, a control character in any field, an email without one ``@``, a line
with more or fewer fields than the header. A good roster adds its students to the gradebook
(``course.gradebook_url``: the SQLite file or the server) and updates the names of those already there, in one
transaction: either every line is in, or none. ``nbgrader db student import`` does the same without the checks,
one commit per student.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from course.student_id import safe_student_id

__all__ = ["COLUMNS", "RosterError", "RosterStudent", "read_roster", "import_roster", "main"]

#: The columns a roster may have (``id`` is required): nbgrader's ``Student`` fields.
COLUMNS = ("id", "first_name", "last_name", "email", "lms_user_id")
#: Bytes a roster may have (a class of thousands is well below).
MAX_BYTES = 4 << 20


class RosterError(ValueError):
    """A roster that cannot be imported; ``problems`` lists ``(line number, what is wrong)``."""

    def __init__(self, path: Path, problems: list[tuple[int, str]]):
        self.path, self.problems = path, problems
        shown = "\n".join(f"  line {n}: {what}" for n, what in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"roster {path} refused, nothing imported ({len(problems)} bad line"
                         f"{'s' if len(problems) != 1 else ''}):\n{shown}{more}")


@dataclass(frozen=True)
class RosterStudent:
    """One student of a roster (empty strings become ``None``, as nbgrader stores them)."""
    id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    lms_user_id: str | None = None


def _control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def read_roster(path: Path | str) -> list[RosterStudent]:
    """The students of the roster at ``path``, in its order; :class:`RosterError` naming every bad line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"roster {path} does not exist (columns: id,first_name,last_name,email; "
                                "see course/roster.example.csv)")
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise RosterError(path, [(0, f"{len(raw)} bytes: a roster is at most {MAX_BYTES} bytes")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise RosterError(path, [(line, "not UTF-8 text: save the roster as CSV UTF-8")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, previous = [], 0  # (row, its first line: a quoted field may hold line breaks)
    try:
        for row in reader:
            rows.append((row, previous + 1))
            previous = reader.line_num
    except csv.Error as e:
        raise RosterError(path, [(reader.line_num, f"not CSV: {e}")]) from None
    if not rows or not any(cell.strip() for cell in rows[0][0]):
        raise RosterError(path, [(1, f"no header line: the first line names the columns ({', '.join(COLUMNS)})")])
    header = [cell.strip() for cell in rows[0][0]]
    problems: list[tuple[int, str]] = []
    unknown = [c for c in header if c not in COLUMNS]
    if unknown or "id" not in header or len(set(header)) != len(header):
        what = (f"unknown column(s) {', '.join(map(repr, unknown))}" if unknown else
                "no 'id' column" if "id" not in header else "a column named twice")
        raise RosterError(path, [(1, f"{what}: the header names {', '.join(COLUMNS[:1])} and any of "
                                     f"{', '.join(COLUMNS[1:])}")])
    named = "first_name" in header or "last_name" in header
    students, seen = [], {}
    for row, number in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) != len(header):
            problems.append((number, f"{len(row)} fields, the header has {len(header)}"))
            continue
        fields = dict(zip(header, row))
        bad = [c for c, v in fields.items() if _control(v)]
        if bad:
            problems.append((number, f"a control character in {', '.join(bad)}"))
            continue
        fields = {c: unicodedata.normalize("NFC", v.strip()) for c, v in fields.items()}
        sid = fields["id"]
        if not safe_student_id(sid):
            problems.append((number, f"id {sid!r} is not a usable student id (a letter or digit first, then letters, "
                                     "digits, '_', '.', '@', '-'; no spaces; at most 100)"))
            continue
        if sid in seen:
            problems.append((number, f"id {sid!r} is already on line {seen[sid]}"))
            continue
        seen[sid] = number
        if named and not (fields.get("first_name") or fields.get("last_name")):
            problems.append((number, f"{sid}: the name is empty"))
            continue
        email = fields.get("email")
        if email and (email.count("@") != 1 or email.startswith("@") or email.endswith("@")):
            problems.append((number, f"{sid}: email {email!r} is not an address"))
            continue
        students.append(RosterStudent(**{c: (v or None) for c, v in fields.items()}))
    if problems:
        raise RosterError(path, problems)
    return students


def import_roster(course_root: Path | str, roster: Path | str) -> list[RosterStudent]:
    """Check ``roster`` (:func:`read_roster`) and put its students in ``course_root``'s gradebook in one
    transaction (added, or their fields updated); returns them."""
    from nbgrader.api import Gradebook, Student

    from course.gradebook_schema import stamp_in_process
    from course.gradebook_url import gradebook_url
    from course.paths import tools_on_path

    students = read_roster(roster)
    stamp_in_process()
    with tools_on_path(), Gradebook(gradebook_url(course_root)) as gb:
        try:
            for s in students:
                row = gb.db.query(Student).filter(Student.id == s.id).one_or_none()
                if row is None:
                    row = Student(id=s.id)
                    gb.db.add(row)
                for field in COLUMNS[1:]:
                    setattr(row, field, getattr(s, field))
            gb.db.commit()
        except BaseException:
            gb.db.rollback()
            raise
    return students


def main(argv: list[str] | None = None) -> int:
    from course.paths import KIT_ROOT

    p = argparse.ArgumentParser(prog="python -m course.roster", description=__doc__.split("\n\n")[0])
    p.add_argument("roster", type=Path, help="CSV: id,first_name,last_name,email (course/roster.example.csv)")
    p.add_argument("--course-dir", type=Path, default=KIT_ROOT, help="the course root (default: the kit)")
    p.add_argument("--check", action="store_true", help="only check the roster; import nothing")
    args = p.parse_args(argv)
    try:
        students = read_roster(args.roster) if args.check else import_roster(args.course_dir, args.roster)
    except (RosterError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n = len(students)
    print(f"{args.roster}: {n} student{'' if n == 1 else 's'}"
          + (" (checked; nothing imported)" if args.check else " in the gradebook"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
