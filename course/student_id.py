"""What a usable student id is: the name of a student's folder (``course/submitted/<id>``, a plain ``--from``
folder, an LMS download, a MOS study's collection), checked before any such name becomes a path."""
from __future__ import annotations

import re

__all__ = ["STUDENT_ID", "safe_student_id"]

#: A usable student id, the whole name (``\Z``: a folder "ada" + newline is not "ada", as ``$`` would let it be).
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}\Z")


def safe_student_id(name: str) -> bool:
    """Whether ``name`` is a usable student id (:data:`STUDENT_ID`, and no ``..`` in it)."""
    return bool(STUDENT_ID.match(name)) and ".." not in name
