"""An exponential moving average of the generator's weights (BasicSR's ``ema_decay``).

After every optimiser step that is taken, ``ema = decay * ema + (1 - decay) * weights`` (batch-norm buffers are
copied). The average is smoother than the last weights and usually validates a little higher; with
``TrainConfig.ema_decay`` > 0 the trainer validates it and saves it as ``best.pth``'s ``model``.
"""
from __future__ import annotations

import copy

import torch

__all__ = ["WeightEMA"]


class WeightEMA:
    """A frozen copy of ``net`` whose float parameters track ``net``'s by exponential moving average."""

    def __init__(self, net: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay={decay!r}: a decay in (0, 1), e.g. 0.999")
        self.decay = decay
        self.module = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: torch.nn.Module) -> None:
        """One step of the average towards ``net``'s current weights."""
        for avg, new in zip(self.module.parameters(), net.parameters()):
            avg.lerp_(new.detach(), 1.0 - self.decay)
        for avg, new in zip(self.module.buffers(), net.buffers()):
            avg.copy_(new)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
