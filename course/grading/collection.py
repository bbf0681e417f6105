"""A class's submissions: collected into ``course/submitted/<student>/<assignment>/`` (plain folders, an LMS zip),
and those nbgrader may grade chosen at intake. One submission's intake -- what it may hold, how it is copied --
is :mod:`course.intake`."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

from course import intake
from course.grading.contract import SUBMITTED_DIR
from course.grading.errors import GradingError
from course.student_id import safe_student_id

# LMS download names (override with --lms-regexp), matched against each member's path: Canvas style
# <student>_<anything>_<file> (01_models.ipynb, report.md) or a folder per student, <student>[_<anything>]/
# [superres/]<path in the hand-in> (submission/set5/baby.png, results/test_table.csv); file_id is the path kept
DEFAULT_LMS_REGEXP = (r"^(?:.*?/)?(?P<student_id>[A-Za-z0-9.@-]+)(?:_[^/]*?_|(?:_[^/]*)?/)(?P<file_id>(?:superres/)?"
                      r"(?:0[1-5]_[a-z_]+\.ipynb|report\.(?:md|pdf)|(?:results|submission|checkpoints|data)/.+))$")


def collect_folders(src: Path, submitted: Path, assignment: str) -> dict[str, str]:
    """Copy the hand-in of ``src/<student>/[<assignment>/]`` to ``submitted/<student>/<assignment>/``
    (course/intake.py: relative paths kept, nothing followed, unsafe hand-ins refused, checkpoints and data left
    out). Returns {student: why it needs manual attention}."""
    _, attention = intake.collect_folders(Path(src), submitted, assignment)
    return attention


def collect_lms_zip(zip_path: Path, course_root: Path, assignment: str, regexp: str) -> dict[str, str]:
    """Unpack an LMS download into ``course/submitted`` member by member (course/intake.py): a bad member is
    reported and skipped for its student alone. Returns {student: why it needs manual attention}."""
    if not zipfile.is_zipfile(zip_path):
        raise GradingError(f"{zip_path} is not a zip file")
    students, attention = intake.collect_zip(Path(zip_path), course_root / SUBMITTED_DIR, assignment, regexp)
    if not students:
        raise GradingError(f"no submission found in {zip_path}: its file names do not match --lms-regexp {regexp!r} "
                           "(groups student_id and file_id, matched against the path)")
    return attention


def intake_submitted(submitted: Path, assignment: str) -> tuple[list[str], dict[str, str]]:
    """The submissions in ``submitted/<student>/<assignment>`` that nbgrader may touch, and {student: why not}
    for the others (an unsafe id, a link, a FIFO, a device, an oversized file: course/intake.py)."""
    ok, refused = [], {}
    if not submitted.is_dir():
        return ok, refused
    for entry in sorted(submitted.iterdir()):
        if not os.path.lexists(entry / assignment):
            continue
        if not safe_student_id(entry.name):
            refused[intake.handin.shown(entry.name)[:100]] = ("not a usable student id (letters, digits, _.@-): "
                                                              "not graded")
            continue
        intake.make_private(entry)  # (filled by nbgrader collect or by hand, under whatever umask; nothing followed)
        try:
            problems = intake.inspect(entry)
        except Exception as e:  # (one submission never stops the class: it is refused with the reason)
            problems = [f"could not be inspected ({type(e).__name__}: {intake.handin.shown(str(e))[:200]})"]
        if problems:
            refused[entry.name] = "refused at intake: " + "; ".join(problems[:5])
        else:
            ok.append(entry.name)
    return ok, refused
