"""The kit's Python for other accounts, where it is installed below a folder they cannot enter.

A shared machine installs Python where every account can run it (``/usr``, ``/opt``). Where the kit's Python sits
below a folder closed to others (pyenv under ``/root``, as on the kit's own build machine), a command that must run
as another account -- a student's Jupyter server, a test's throw-away account -- runs in a private mount namespace
in which that folder alone is replaced by a tmpfs (mode 0755) holding the one entry the Python install is in, bound
from the real folder: nothing else of the closed folder is visible, and nothing changes outside the namespace.
Root only (it mounts).
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def closed_python_folder(executable: str | None = None) -> tuple[Path, str] | None:
    """(the outermost folder above this Python's real executable that other accounts cannot enter, the name of
    its entry that holds the install), or None when others can reach the executable."""
    real = Path(os.path.realpath(executable or sys.executable))
    closed = next((d for d in reversed(real.parents) if not os.stat(d).st_mode & 0o001), None)
    if closed is None:
        return None
    return closed, real.relative_to(closed).parts[0]


def with_readable_python(argv: list[str], hold: Path, executable: str | None = None) -> list[str]:
    """``argv`` run where other accounts can run this Python (see the module's docstring); ``hold``: an empty
    folder of the caller's, outside the closed one (the install is bound there first). ``argv`` unchanged when
    nothing is closed."""
    closed = closed_python_folder(executable)
    if closed is None:
        return list(map(str, argv))
    folder, keep = closed
    hold.mkdir(parents=True, exist_ok=True)
    q = shlex.quote
    script = (f"mount --bind {q(str(folder / keep))} {q(str(hold))} && "
              f"mount -t tmpfs -o mode=0755 none {q(str(folder))} && "
              f"mkdir {q(str(folder / keep))} && "
              f"mount --bind {q(str(hold))} {q(str(folder / keep))} && exec \"$@\"")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *map(str, argv)]
