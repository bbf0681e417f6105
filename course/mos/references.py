"""Optional reference versions of a study: the course's reference SRResNet/SRGAN on the evaluation LR images."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

__all__ = ["reference_outputs", "parse_reference_args"]


def reference_outputs(checkpoint: Path, lr_images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{name: (s*h, s*w, 3) uint8 RGB}``: the generator of a kit checkpoint (built from the reference solution,
    :func:`sr_utils.checkpoint.load_generator`) on each ``(h, w, 3)`` uint8 RGB LR image."""
    from sr_utils.checkpoint import load_generator
    from sr_utils.inference import super_resolve

    from course.reference import load_reference

    net = load_generator(checkpoint, load_reference()[0])
    return {name: super_resolve(net, lr) for name, lr in lr_images.items()}


def parse_reference_args(pairs: list[str]) -> dict[str, Path]:
    """``["SRGAN=ckpt.pth", ...]`` -> ``{"srgan": Path("ckpt.pth")}`` (names lower-cased, letters/digits/_-)."""
    out = {}
    for pair in pairs or []:
        name, sep, path = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name) or not Path(path).is_file():
            raise ValueError(f"--reference {pair!r}: expected NAME=CHECKPOINT with an existing checkpoint file")
        out[name.lower()] = Path(path)
    return out
