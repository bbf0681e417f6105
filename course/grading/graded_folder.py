"""What a submission's graded folder (``course/autograded/<student>``) may keep once its run is over: at most its
size limit (bytes), and only its graded notebooks, with nbgrader's records of the hand-in put back from the
submitted copy."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from course import plain_tree
from course.jupyter.handin import EXCHANGE_FILES
from course.sandbox import Limits
from course.student_files import read_beneath

EXCHANGE_RECORD_BYTES = 1024  # timestamp.txt, submission_secret.txt: a line each
MAX_SUBMISSION_BYTES = Limits().folder_bytes  # a graded folder (autograded/<student>), checked after each run
DISK_RESERVE_BYTES = 64 << 20  # room on the submission's tmpfs past its size limit, for nbgrader's own writes


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (nothing followed, any depth)."""
    return sum(size for _, size in plain_tree.regular_files(folder))


def trim_to_size_limit(folder: Path, limit: int = MAX_SUBMISSION_BYTES) -> str | None:
    """The size limit of a graded folder (``limit`` bytes), checked after its run: past it, every file but the
    notebooks is removed and the reason returned; else None."""
    size = folder_bytes(folder)
    if size <= limit:
        return None
    for path, _ in plain_tree.regular_files(folder):
        if path.suffix != ".ipynb":
            os.unlink(path)
    return f"wrote {size >> 20} MB into its folder (at most {limit >> 20} MB): its files were removed"


def is_graded_notebook(parts: tuple[str, ...], st: os.stat_result | None = None) -> bool:
    """A graded notebook of an assignment folder: a regular ``*.ipynb`` file directly in it."""
    return len(parts) == 1 and parts[0].endswith(".ipynb") and (st is None or stat.S_ISREG(st.st_mode))


def keep_graded_notebooks(folder: Path) -> int:
    """After a submission's run, its graded folder keeps its graded notebooks and nothing else: no file a notebook
    wrote while graded (``.grading-run/``, checkpoints, pictures, a page of HTML) stays where the formgrader
    serves ``course/autograded/`` from the instructor's origin, or travels into the feedback. Returns the bytes
    removed."""
    return plain_tree.keep_only(folder, is_graded_notebook)


def restore_exchange_records(folder: Path, submitted: Path) -> list[str]:
    """Put nbgrader's records of the hand-in (``EXCHANGE_FILES``: its submission time and secret, as collect kept
    them in ``submitted``) back into the graded ``folder``, which keeps nothing of what its run left there: the
    feedback is made from ``folder`` and carries them, and releasing it reads them (the secret names the page the
    student fetches). Regular files of at most ``EXCHANGE_RECORD_BYTES``, read beneath ``submitted`` through no
    link (:func:`course.student_files.read_beneath`). Returns the names put back."""
    restored = []
    for name in EXCHANGE_FILES:
        try:
            data = read_beneath(submitted, name, EXCHANGE_RECORD_BYTES)
        except (OSError, ValueError):  # (missing, a link, not a regular file, too large: not put back)
            continue
        (folder / name).write_bytes(data)
        restored.append(name)
    return restored
