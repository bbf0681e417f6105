"""Learning-rate schedules: the multiplier of the base rate at each optimiser step, and reduce-on-plateau.

``warmup`` steps of linear warm-up, then one of: ``constant``; ``step`` (x ``gamma`` at the first of ``decay_at``,
fractions of the run, default halfway); ``multistep`` (x ``gamma`` at each of ``decay_at``); ``cosine`` (half a cosine
from 1 to 0 over the rest of the run); ``cosine-restarts`` (SGDR: the cosine restarts from 1 every ``restart_every``
steps, default a quarter of the run); ``plateau`` (x ``gamma`` when the validation PSNR has not improved for
``plateau_patience`` validations, never below ``plateau_min_factor``; :class:`Plateau`).

The same multiplier drives the generator's and the discriminator's rates (``lr`` and ``lr_d``). The schedule counts
optimiser steps that were taken: a step the GradScaler skips (an fp16 overflow) does not advance it.
"""
from __future__ import annotations

import math

__all__ = ["lr_lambda", "Plateau"]


class Plateau:
    """Reduce-on-plateau on validation PSNR (higher is better): :meth:`update` after each validation.

    ``factor`` starts at 1 and is multiplied by ``gamma`` after ``patience`` validations in a row without a PSNR
    better than the best by more than ``threshold`` dB; it never goes below ``min_factor``. Its state is saved in
    checkpoints (:meth:`state_dict`), so a resumed run drops the rate when an uninterrupted one would.
    """

    def __init__(self, gamma: float = 0.1, patience: int = 3, min_factor: float = 1e-3, threshold: float = 1e-3):
        self.gamma, self.patience, self.min_factor, self.threshold = gamma, patience, min_factor, threshold
        self.factor, self.best, self.bad = 1.0, -math.inf, 0

    def update(self, psnr: float) -> bool:
        """Record one validation PSNR (dB); True when the rate was just reduced."""
        if psnr > self.best + self.threshold:
            self.best, self.bad = psnr, 0
            return False
        self.bad += 1
        if self.bad < self.patience or self.factor <= self.min_factor:
            return False
        self.factor, self.bad = max(self.min_factor, self.factor * self.gamma), 0
        return True

    def state_dict(self) -> dict:
        return {"factor": self.factor, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.factor, self.best, self.bad = float(state["factor"]), float(state["best"]), int(state["bad"])


def lr_lambda(cfg, plateau: Plateau | None = None):
    """Multiplier of the base learning rate at optimiser step ``t`` (warm-up, then ``cfg.schedule``).
    ``plateau`` is read for ``schedule="plateau"`` (a fresh :class:`Plateau` when not given)."""
    total, warm = max(1, cfg.iterations), cfg.warmup
    milestones = sorted(int(f * total) for f in cfg.decay_at) if cfg.decay_at else [total // 2]
    period = getattr(cfg, "restart_every", 0) or max(1, (total - warm) // 4)
    if cfg.schedule == "plateau" and plateau is None:
        plateau = Plateau(cfg.gamma, cfg.plateau_patience, cfg.plateau_min_factor)

    def factor(t: int) -> float:
        if warm and t < warm:
            return (t + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "cosine":
            p = (t - warm) / max(1, total - warm)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, p)))
        if cfg.schedule == "cosine-restarts":
            return 0.5 * (1 + math.cos(math.pi * ((t - warm) % period) / period))
        if cfg.schedule == "step":
            return cfg.gamma if t >= milestones[0] else 1.0
        if cfg.schedule == "multistep":
            return cfg.gamma ** sum(t >= m for m in milestones)
        if cfg.schedule == "plateau":
            return plateau.factor
        raise ValueError(f"unknown schedule {cfg.schedule!r}: constant, step, multistep, cosine, cosine-restarts "
                         "or plateau")

    return factor
