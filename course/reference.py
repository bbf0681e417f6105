"""The assignment's reference solution, rebuilt from the instructor's notebooks — the one place that does it.

The reference ``models.py`` and ``solver.py`` exist only as the ``%%writefile`` cells of ``source/<assignment>/
01_models.ipynb`` and ``02_solver.ipynb`` (never as files in ``source/``: nbgrader would ship them to students).
Everything that needs the reference — the instructor's default in ``python -m sr_utils train-*``/``demo``, and the
hidden checks, which recompute on the trusted side what a student's network must compute with the reference
architecture holding the student's weights (``course.grading.recompute``) — gets it from here:

- :func:`reference_sources` returns the module texts (to send to another process, e.g. on stdin);
- :func:`load_reference` builds importable modules **in memory** (no temporary folder left behind) whose tracebacks
  name the notebook they come from (``source/superres/01_models.ipynb:models.py``).

This lives in ``course/`` (instructor-only), not in ``sr_utils`` (which students see); the cells are read and the
modules built by ``sr_utils.notebook`` (:func:`~sr_utils.notebook.writefile_module`,
:func:`~sr_utils.notebook.module_from_source`), as everywhere else.
"""
from __future__ import annotations

import types
from pathlib import Path

from course.paths import KIT_ROOT
from sr_utils.notebook import MODULE_NOTEBOOKS, MissingWritefile, module_from_source, writefile_module

__all__ = ["ASSIGNMENT", "default_source_dir", "reference_sources", "load_reference"]

#: The course's assignment.
ASSIGNMENT = "superres"


def default_source_dir(assignment: str = ASSIGNMENT) -> Path:
    """``<repository>/source/<assignment>`` of the checkout this module is in."""
    return KIT_ROOT / "source" / assignment


def _source_dir(source_dir) -> Path:
    folder = Path(source_dir) if source_dir is not None else default_source_dir()
    missing = [nb for nb in MODULE_NOTEBOOKS.values() if not (folder / nb).is_file()]
    if missing:
        raise FileNotFoundError(f"the reference solution is rebuilt from {folder / missing[0]}, which does not exist: "
                                "run this from a checkout of the course repository (with source/), or pass the "
                                "student's modules explicitly (--models models.py --solver solver.py)")
    return folder


def reference_sources(source_dir=None) -> dict[str, str]:
    """``{"models.py": text, "solver.py": text}`` of the reference solution in ``source_dir`` (default: this
    checkout's ``source/superres``). Raises ``FileNotFoundError`` naming the missing notebook, ``ValueError`` when a
    notebook has lost its ``%%writefile`` cell."""
    folder = _source_dir(source_dir)
    out = {}
    for module, notebook in MODULE_NOTEBOOKS.items():
        try:
            out[module] = writefile_module(folder / notebook, module)
        except MissingWritefile:
            raise ValueError(f"{folder / notebook} has no `%%writefile {module}` cell: the reference cannot be "
                             "rebuilt") from None
    return out


_loaded: dict[Path, tuple[types.ModuleType, types.ModuleType]] = {}


def load_reference(source_dir=None) -> tuple[types.ModuleType, types.ModuleType]:
    """The reference ``(models, solver)`` modules, built in memory once per process and source folder (registered as
    ``sr_reference_models`` / ``sr_reference_solver``)."""
    folder = _source_dir(source_dir).resolve()
    if folder not in _loaded:
        texts = reference_sources(folder)
        built = [module_from_source(texts[m], f"sr_reference_{m[:-3]}", f"{folder / nb}:{m}")
                 for m, nb in MODULE_NOTEBOOKS.items()]
        _loaded[folder] = (built[0], built[1])
    return _loaded[folder]
