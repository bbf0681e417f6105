"""Where the kit is, and how the course's commands find nbgrader: the one place that knows either.

The kit's checkout (:data:`KIT_ROOT`) holds ``source/``, ``release/`` and the instructor's ``nbgrader_config.py``:
it is the default *course root* (a course copy, ``course.demo.copy_course``, is another; the folders below a course
root are in :mod:`course.grading.contract`). The ``course`` package (:data:`PACKAGE`) holds the kit's own files
besides its modules. nbgrader, and what it runs by name (``alembic`` when it upgrades a gradebook; ``jupyter``), are
the commands of this Python environment (:data:`BIN`): :func:`nbgrader_executable` finds nbgrader, :func:`tool_env`
puts ``BIN`` first on ``PATH`` for the processes that run them.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

__all__ = ["PACKAGE", "KIT_ROOT", "TEMPLATES", "BIN", "ToolMissing", "tool", "nbgrader_executable", "tool_env",
           "tools_on_path"]

#: The ``course`` package: its modules, and ``jupyter/``, ``templates/``, ``translations/``, ``student_kit_files/``.
PACKAGE = Path(__file__).resolve().parent
#: The kit's checkout: ``source/``, ``release/``, ``nbgrader_config.py`` (the default course root).
KIT_ROOT = PACKAGE.parent
#: The nbconvert templates of the formgrader's and the feedback's pages (MathJax served offline), on ``JUPYTER_PATH``.
TEMPLATES = PACKAGE / "templates"
#: This Python environment's commands (``nbgrader``, ``jupyter``, ``alembic``).
BIN = Path(sys.executable).parent


class ToolMissing(RuntimeError):
    """A command of the instructor's tools is not installed in this Python environment (the message says how)."""


def tool(name: str) -> Path:
    """The command ``name`` of this Python environment (``BIN/name``; it may not be installed)."""
    return BIN / name


def nbgrader_executable() -> str:
    """The ``nbgrader`` command of this Python environment; :class:`ToolMissing` when it is not installed."""
    exe = tool("nbgrader")
    if not exe.exists():
        raise ToolMissing(f"nbgrader is not installed next to {sys.executable}: pip install -e '.[instructor]'")
    return str(exe)


def tool_env(env: dict | None = None, **extra: str) -> dict[str, str]:
    """``env`` (default: this process's environment) with :data:`BIN` first on ``PATH``, and ``extra`` set: nbgrader
    runs ``alembic`` by name when it upgrades a gradebook, Jupyter finds its commands on ``PATH``."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = os.pathsep.join(p for p in (str(BIN), env.get("PATH")) if p)
    env.update(extra)
    return env


@contextlib.contextmanager
def tools_on_path():
    """Within the block, this process's ``PATH`` has :data:`BIN` first (for nbgrader's API used in-process: it runs
    ``alembic`` by name when it upgrades a gradebook); restored after."""
    old = os.environ.get("PATH")
    os.environ["PATH"] = tool_env()["PATH"]
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old
