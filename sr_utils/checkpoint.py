"""Checkpoints: ``state_dict``s only, written atomically, loaded with ``weights_only=True``.

The tutorial this course grew from pickled whole models (``torch.save({'model': model})``): such files break when
code moves and are refused by ``torch.load`` since PyTorch 2.6. :func:`load_checkpoint` explains how to convert one.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError"]


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be used; the message says why and what to do."""


def publish_permissions(path, directory: bool = False) -> None:
    """Give a file or folder made by ``tempfile`` (always 0600 / 0700) the permissions an ordinary file would
    have under the current umask, before it is renamed into place: shared data folders and grading sandboxes
    (which run as another user) must be able to read what the kit writes."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if directory else 0o666) & ~mask)


def save_checkpoint(path, **state) -> Path:
    """Save ``state`` (``state_dict``s, numbers, strings, tensors) to ``path`` atomically: written to a temporary
    file in the same folder, flushed to disk, then renamed. A crash mid-save leaves the previous file intact."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        publish_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``torch.load(..., weights_only=True)``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} holds pickled Python objects, not just tensors and plain containers (e.g. a whole model saved "
            "tutorial-style), which torch.load refuses with weights_only=True. If you trust the file, convert it "
            "once: "
            "ckpt = torch.load(path, weights_only=False); "
            "torch.save({'model': ckpt['model'].state_dict()}, 'converted.pth') "
            f"(original error: {str(e).splitlines()[0]})") from None
    except (RuntimeError, EOFError) as e:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {e}") from None
