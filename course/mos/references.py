"""Optional reference versions of a study: the reference SRResNet/SRGAN (the course's solution) on the evaluation LR.

A kit checkpoint is ``{"model": state_dict, "model_kwargs": {...}, ...}``; a ``Generator``'s state_dict wraps the
SRResNet in ``net.`` (its keys start with ``net.``). The architecture comes from :func:`course.reference.load_reference`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["load_generator", "upscale_all", "parse_reference_args"]


def load_generator(checkpoint: Path):
    """The SRResNet or Generator of a kit checkpoint, on the CPU, in eval mode."""
    from sr_utils.checkpoint import load_checkpoint

    from course.reference import load_reference

    models, _ = load_reference()
    ck = load_checkpoint(checkpoint)
    is_generator = any(k.startswith("net.") for k in ck["model"])
    net = (models.Generator if is_generator else models.SRResNet)(**ck.get("model_kwargs", {}))
    net.load_state_dict(ck["model"])
    return net.eval()


def upscale_all(net, lr_images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{name: (s*h, s*w, 3) uint8}``: the network (input RGB [0, 1], output [-1, 1]) on each ``(h, w, 3)`` uint8 LR."""
    import torch

    from sr_utils.color import to_uint8

    out = {}
    with torch.no_grad():
        for name, lr in lr_images.items():
            x = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, h, w)
            y = net(x).clamp(-1, 1)[0].permute(1, 2, 0).double().numpy()  # (s*h, s*w, 3) in [-1, 1]
            out[name] = to_uint8((y + 1.0) * 127.5)
    return out


def parse_reference_args(pairs: list[str]) -> dict[str, Path]:
    """``["SRGAN=ckpt.pth", ...]`` -> ``{"srgan": Path("ckpt.pth")}`` (names lower-cased, letters/digits/_-)."""
    import re

    out = {}
    for pair in pairs or []:
        name, sep, path = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name) or not Path(path).is_file():
            raise ValueError(f"--reference {pair!r}: expected NAME=CHECKPOINT with an existing checkpoint file")
        out[name.lower()] = Path(path)
    return out
