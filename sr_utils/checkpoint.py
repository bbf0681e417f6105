"""Checkpoints: ``state_dict``s only, written atomically, loaded with ``weights_only=True``.

The tutorial this course grew from pickled whole models (``torch.save({'model': model})``): such files break when
code moves and are refused by ``torch.load`` since PyTorch 2.6. :func:`load_checkpoint` explains how to convert one.
"""
from __future__ import annotations

import pickle
from pathlib import Path

from .i18n import tr

__all__ = ["save_checkpoint", "load_checkpoint", "load_generator", "load_labelled_generator", "generator_label",
           "CheckpointError", "ARCHITECTURES"]

#: The generator architectures a model checkpoint can name in its ``arch`` entry.
ARCHITECTURES = ("SRResNet", "Generator")


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be used; the message says why and what to do."""


def save_checkpoint(path, **state) -> Path:
    """Save ``state`` (``state_dict``s, numbers, strings, tensors) to ``path`` atomically: written to a temporary
    file in the same folder, flushed to disk, then renamed. A crash mid-save leaves the previous file intact."""
    import torch

    from .files import atomic_writer

    with atomic_writer(path) as f:
        torch.save(state, f)
    return Path(path)


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``torch.load(..., weights_only=True)``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(tr("checkpoint {path} does not exist", path=path))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(tr(
            "{path} holds pickled Python objects, not just tensors and plain containers (e.g. a whole model saved "
            "tutorial-style), which torch.load refuses with weights_only=True. If you trust the file, convert it "
            "once: "
            "ckpt = torch.load(path, weights_only=False); "
            "torch.save({{'model': ckpt['model'].state_dict()}}, 'converted.pth') "
            "(original error: {error})", path=path, error=str(e).splitlines()[0])) from None
    except (RuntimeError, EOFError) as e:
        raise CheckpointError(tr("{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {error}",
                                 path=path, error=e)) from None


def load_generator(path, models, device="cpu"):
    """The trained network of a kit checkpoint, built from ``models`` (the student's ``models.py`` module or the
    reference), in eval mode on ``device``.

    The checkpoint names its class in ``arch`` (``"SRResNet"`` or ``"Generator"``) and its constructor arguments
    in ``model_kwargs``; its weights are ``model`` (a ``state_dict``). Written by :func:`sr_utils.trainer.train`.
    Raises :class:`CheckpointError` saying what is wrong and what to do.
    """
    return load_labelled_generator(path, models, device)[1]


def load_labelled_generator(path, models, device="cpu"):
    """``(label, network)``: :func:`load_generator`, and what the checkpoint holds (:func:`generator_label`),
    from one read of the file."""
    ckpt = load_checkpoint(path)
    missing = [k for k in ("arch", "model_kwargs", "model") if k not in ckpt]
    if missing:
        raise CheckpointError(tr("{path} has no {keys} entry: it was not written by this kit's trainer (or by an "
                                 "older version that did not record the architecture); train it again with notebook "
                                 "03 or `python -m sr_utils train-srresnet`",
                                 path=path, keys=", ".join(repr(k) for k in missing)))
    arch = ckpt["arch"]
    if arch not in ARCHITECTURES:
        raise CheckpointError(tr("{path}: unknown architecture {arch!r}, expected one of {known}", path=path,
                                 arch=arch, known=", ".join(ARCHITECTURES)))
    if not hasattr(models, arch):
        raise CheckpointError(tr("{path} holds a {arch}, but {models} defines no class {arch}", path=path, arch=arch,
                                 models=getattr(models, "__file__", models)))
    net = getattr(models, arch)(**ckpt["model_kwargs"])
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(tr("{path} does not fit the {arch} of {models} built with {kwargs}: {error}", path=path,
                                 arch=arch, models=getattr(models, "__file__", models), kwargs=ckpt["model_kwargs"],
                                 error=str(e).splitlines()[0])) from None
    return generator_label(ckpt), net.to(device).eval()


def generator_label(ckpt: dict) -> str:
    """What a generator checkpoint (a dict from :func:`load_checkpoint`) holds, as tables and figures name it:
    ``"SRResNet"``; ``"SRGAN"`` when its content loss was VGG features; ``"SRGAN-MSE"`` when it was the pixel MSE
    (the paper's variant, trained when the ImageNet VGG19 weights are not on the machine)."""
    if ckpt.get("arch") == "SRResNet":
        return "SRResNet"
    content = str((ckpt.get("config") or {}).get("content", "vgg54"))
    return "SRGAN-MSE" if content == "mse" else "SRGAN"
