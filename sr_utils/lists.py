"""Where the data is: the data folder, and the list and cache of every prepared split.

``python -m data_tools prepare`` writes, per split and scale, ``<data>/lists/<split>_x<scale>.json`` (image pairs,
paths relative to the data folder) and, for training splits, a decoded cache ``<data>/cache/<split>_x<scale>/``.
This module is the one place that knows those names and which split plays which role:

- training: ``DIV2K_train`` when prepared, else the bundled ``samples_train``;
- validation (model selection, ``best.pth``): ``DIV2K_valid`` when prepared, else ``samples_val`` (bundled photos
  held out of training) — never a test set;
- test: the course's benchmark sets that are prepared, else the bundled ``samples_test``;
- human evaluation: ``Set5`` when prepared, else ``samples_test`` (and it is called that, not "Set5").
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .i18n import tr

__all__ = ["DATA_DIR_ENV", "TEST_SETS", "TRAIN_SPLITS", "VALIDATION_SPLITS", "default_data_dir", "list_path",
           "cache_dir", "read_list", "split_name", "train_list", "validation_list", "test_lists", "human_eval_list",
           "submission_folder"]

#: The environment variable naming the data folder (the grader sets it for the notebooks it runs).
DATA_DIR_ENV = "SR_DATA_DIR"

#: The course's test sets, in table order (DIV2K_valid is also the validation split when prepared: tables mark it).
TEST_SETS = ("DIV2K_valid", "Set5", "Set14", "B100", "Urban100")
#: Training splits, preferred first.
TRAIN_SPLITS = ("DIV2K_train", "samples_train")
#: Validation splits (model selection), preferred first.
VALIDATION_SPLITS = ("DIV2K_valid", "samples_val")


def _prepare_hint() -> str:
    """How to make the lists: the end of every "no list" message."""
    return tr("run `python -m data_tools samples` (the bundled photos, offline) and `python -m data_tools prepare`")


def default_data_dir() -> Path:
    """``$SR_DATA_DIR``, else ``<project root>/data`` (the folder holding ``nbgrader_config.py``), else ``./data``."""
    from .notebook import find_project_root

    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    root = find_project_root()
    return (root / "data") if root else Path("data")


def list_path(data_dir, split: str, scale: int = 4) -> Path:
    """``<data_dir>/lists/<split>_x<scale>.json``."""
    return Path(data_dir) / "lists" / f"{split}_x{scale}.json"


def cache_dir(data_dir, split: str, scale: int = 4) -> Path:
    """``<data_dir>/cache/<split>_x<scale>`` (the decoded training cache of a split)."""
    return Path(data_dir) / "cache" / f"{split}_x{scale}"


def read_list(path) -> tuple[dict, Path]:
    """A prepared list (its JSON) and the data folder its image paths are relative to."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(tr("list {path} does not exist: {hint}", path=path, hint=_prepare_hint()))
    meta = json.loads(path.read_text())
    return meta, (path.parent / meta.get("root", "..")).resolve()


def split_name(list_file) -> str:
    """The split a list describes (``samples_val`` for ``lists/samples_val_x4.json``)."""
    return read_list(list_file)[0]["split"]


def _first(data_dir, splits, scale: int, role: str) -> Path:
    for split in splits:
        if list_path(data_dir, split, scale).is_file():
            return list_path(data_dir, split, scale)
    params = dict(files=" or ".join(f"{s}_x{scale}.json" for s in splits), folder=Path(data_dir) / "lists",
                  hint=_prepare_hint())
    if role == "training":
        raise FileNotFoundError(tr("no training list ({files}) in {folder}: {hint}", **params))
    raise FileNotFoundError(tr("no validation list ({files}) in {folder}: {hint}", **params))


def train_list(data_dir, scale: int = 4) -> Path:
    """The training list: prepared DIV2K train if present, else the bundled samples' train split."""
    return _first(data_dir, TRAIN_SPLITS, scale, "training")


def validation_list(data_dir, scale: int = 4) -> Path:
    """The list that chooses ``best.pth``: DIV2K_valid if prepared, else the bundled photos held out of training."""
    return _first(data_dir, VALIDATION_SPLITS, scale, "validation")


def test_lists(data_dir, scale: int = 4) -> dict[str, Path]:
    """``{set name: list}`` of the course's test sets that are prepared; the bundled test split when none is."""
    found = {s: list_path(data_dir, s, scale) for s in TEST_SETS if list_path(data_dir, s, scale).is_file()}
    if not found and list_path(data_dir, "samples_test", scale).is_file():
        found = {"samples_test": list_path(data_dir, "samples_test", scale)}
    if not found:
        raise FileNotFoundError(tr("no test list in {folder}: {hint}", folder=Path(data_dir) / "lists",
                                   hint=_prepare_hint()))
    return found


def human_eval_list(data_dir, scale: int = 4) -> tuple[str, Path]:
    """``(name, list)`` of the images of the human evaluation: ``Set5`` when prepared, else ``samples_test``."""
    for split in ("Set5", "samples_test"):
        if list_path(data_dir, split, scale).is_file():
            return split, list_path(data_dir, split, scale)
    raise FileNotFoundError(tr("neither Set5 nor the bundled test photos are prepared in {folder}: {hint}",
                               folder=data_dir, hint=_prepare_hint()))


def submission_folder(split: str) -> str:
    """The folder under ``submission/`` holding a student's images of the human evaluation split ``split``:
    ``set5`` for ``Set5``, ``samples`` for the bundled photos (named for what it holds)."""
    return "set5" if split == "Set5" else "samples"
