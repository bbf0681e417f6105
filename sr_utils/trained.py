"""The trained generators notebooks 04 and 05 use: where notebook 03 put them, what to call them, and what the
grader puts in their place when notebook 03 produced none.

Notebook 03 writes ``checkpoints/srresnet/best.pth`` and ``checkpoints/srgan/best.pth`` (under nbgrader: the same
paths inside ``.grading-run/``, see :func:`sr_utils.notebook.output_path`). Notebooks 04 and 05 grade code of their
own (``evaluate``, ``write_sr_images``) that only needs *some* generator. So that one mistake in notebook 02 or 03
does not also cost the points of 04 and 05, a missing checkpoint is replaced **while grading** by
:class:`StandInGenerator` — bicubic upsampling and a fixed sharpening, no training, labelled "(stand-in)" in every
table and figure — and the notebook says which notebook to fix. Outside grading a missing checkpoint is an error
that says the same. The hidden checks of 04 and 05 use the same rule.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .checkpoint import load_labelled_generator
from .i18n import tr
from .notebook import in_autograder, output_path

__all__ = ["STAGES", "StandInGenerator", "stand_in_label", "trained_checkpoint", "missing_checkpoint_message",
           "load_trained_generators"]

#: Notebook 03's training stages, in table order: folder name under ``checkpoints/`` -> the label of its model.
STAGES = {"srresnet": "SRResNet", "srgan": "SRGAN"}


class StandInGenerator(nn.Module):
    """Not a trained model: what grading uses when notebook 03 produced no checkpoint (see the module's doc).

    ``(N, 3, h, w)`` float32 RGB in [0, 1] -> ``(N, 3, 4h, 4w)`` float32 RGB in [-1, 1] (the kit's generator
    convention): PyTorch's bicubic upsampling, then a fixed 3×3 sharpening (unsharp mask, amount 0.5), so that it
    is deterministic, needs no weights file and is visibly not the table's bicubic row.
    """

    def __init__(self, scale: int = 4):
        super().__init__()
        self.scale = scale
        blur = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
        identity = torch.zeros(3, 3)
        identity[1, 1] = 1.0
        kernel = identity + 0.5 * (identity - blur)
        self.sharpen = nn.Parameter(kernel.expand(3, 1, 3, 3).clone(), requires_grad=False)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        up = F.conv2d(F.pad(up, (1, 1, 1, 1), mode="replicate"), self.sharpen, groups=3)
        return (up.clamp(0, 1) * 2 - 1).contiguous()


def stand_in_label(stage: str) -> str:
    """``"SRGAN (stand-in)"``: how tables and figures name the stand-in of ``stage`` (``srresnet``/``srgan``)."""
    return f"{STAGES[stage]} (stand-in)"


def trained_checkpoint(stage: str, folder=".") -> Path:
    """``<folder>/checkpoints/<stage>/best.pth``, or its ``.grading-run/`` twin under nbgrader."""
    return Path(folder) / output_path(f"checkpoints/{stage}/best.pth")


def missing_checkpoint_message(stage: str) -> str:
    """The one line a student sees when notebook 03 did not produce ``stage``'s checkpoint."""
    return tr("notebook 03_train did not produce checkpoints/{stage}/best.pth: fix 03_train first (run it to the "
              "end; its first error is the one to fix)", stage=stage)


def load_trained_generators(models, folder=".", device="cpu") -> dict[str, nn.Module]:
    """``{label: generator}`` of notebook 03's two runs, in eval mode, built with ``models`` (your ``models.py``).

    Labels say what a checkpoint holds: ``SRResNet``, and ``SRGAN`` or ``SRGAN-MSE`` (trained without the VGG
    weights). A missing checkpoint raises ``FileNotFoundError`` saying to fix notebook 03 — except while nbgrader
    runs the notebook, where the same line is printed and :class:`StandInGenerator` (labelled "(stand-in)") takes
    its place, so that this notebook's own code is still graded.
    """
    nets: dict[str, nn.Module] = {}
    for stage in STAGES:
        path = trained_checkpoint(stage, folder)
        if path.is_file():
            label, net = load_labelled_generator(path, models, device)
            nets[label] = net
            continue
        if not in_autograder():
            raise FileNotFoundError(missing_checkpoint_message(stage))
        print(tr("{message}. While grading, {stand_in!r} (bicubic + sharpening, not a trained model) takes its "
                 "place, so that this notebook's own code is graded.", message=missing_checkpoint_message(stage),
                 stand_in=stand_in_label(stage)))
        nets[stand_in_label(stage)] = StandInGenerator().to(device).eval()
    return nets
