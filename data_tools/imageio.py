"""Atomic image writes (a crash never leaves a half-written PNG under its final name)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from sr_utils.checkpoint import publish_permissions

__all__ = ["write_png", "atomic_write_bytes"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        publish_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_png(path: Path, img: np.ndarray) -> None:
    """Save an ``(H, W[, 3])`` uint8 array as PNG atomically; skip the write if the file already holds it."""
    import io

    from PIL import Image

    path = Path(path)
    if path.exists():
        try:
            with Image.open(path) as im:
                if np.array_equal(np.asarray(im), img):
                    return
        except Exception:
            pass  # unreadable: overwrite
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
