"""What the training checks hand the student's epoch on the student side: the kit's small networks (the trusted side
builds the same ones for its oracles, :mod:`.checks.solver_checks`), an optimizer step recorder and a recording
GradScaler stand-in. Kit code without secrets, sent to the sandbox as source (:mod:`.student_wire`)."""
from __future__ import annotations


def kit_upscaler():
    """x4: (N, 3, h, w) in [0, 1] -> (N, 3, 4h, 4w) in [-1, 1], with a batch-norm (train/eval mode matters)."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.PReLU(),
                         nn.Conv2d(8, 48, 3, padding=1), nn.PixelShuffle(4), nn.Tanh())


def kit_discriminator():
    """(N, 3, H, W) -> (N, 1) logits, with a batch-norm (a concatenated real+fake batch changes its gradient)."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.LeakyReLU(0.2),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 1))


def kit_vgg():
    """A frozen feature extractor standing in for the truncated VGG19 (conv/ReLU/pool, parameters frozen, eval
    mode): what the epoch must do with it -- feed it ImageNet-normalised SR and HR, never train it -- is the same,
    and it needs no torchvision import (seconds per process)."""
    from torch import nn

    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
    net.requires_grad_(False)
    return net.eval()


class Recorder:
    """Records a copy of the parameters' gradients at every ``optimizer.step()`` (a step pre-hook)."""

    def __init__(self, optimizer, params):
        self.params, self.grads = list(params), []
        optimizer.register_step_pre_hook(self._pre)

    def _pre(self, optimizer, args, kwargs):
        self.grads.append([None if p.grad is None else p.grad.detach().clone() for p in self.params])


class RecordingScaler:
    """The GradScaler interface without scaling: counts what the epoch asks of it."""

    def __init__(self):
        self.calls = {"scale": 0, "step": 0, "update": 0}

    def scale(self, loss):
        self.calls["scale"] += 1
        return loss

    def step(self, optimizer):
        self.calls["step"] += 1
        optimizer.step()

    def update(self):
        self.calls["update"] += 1
