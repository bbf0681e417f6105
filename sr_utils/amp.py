"""Mixed precision for training: which autocast dtype, whether a GradScaler, on which device.

``TrainConfig.amp_dtype``:

- ``auto`` (default): fp16 autocast + ``GradScaler`` on CUDA; bf16 autocast on CPUs with native bf16 (AVX512-BF16
  or AMX), where it roughly halves a step; full fp32 elsewhere.
- ``float16``: fp16 autocast + ``GradScaler`` on any device. On a CPU this is the GPU recipe run where the tests can
  run it (PyTorch supports float16 autocast and ``GradScaler("cpu")``): overflowing steps are skipped and the scale
  halves, exactly as on a GPU.
- ``bfloat16``: bf16 autocast, no scaler (bf16 has fp32's range).

The student's solver calls ``torch.autocast(device.type, enabled=amp)`` without a dtype: :func:`autocast_dtype`
sets the device's default autocast dtype for the duration of the run, so the solver's interface stays the same.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

__all__ = ["AmpPlan", "amp_plan", "autocast_dtype", "make_scaler", "cpu_has_bf16"]


def cpu_has_bf16() -> bool:
    """True on CPUs with native bfloat16 (AVX512-BF16 or AMX): bf16 autocast then roughly halves a CPU step."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


@dataclass(frozen=True)
class AmpPlan:
    """What a run does: ``enabled`` (autocast on), ``dtype`` (``torch.float16``/``torch.bfloat16``, or None when
    off) and ``scaler`` (a GradScaler per optimiser: fp16 needs loss scaling)."""

    enabled: bool
    dtype: torch.dtype | None
    scaler: bool

    @property
    def name(self) -> str:
        return {torch.float16: "float16", torch.bfloat16: "bfloat16"}.get(self.dtype, "off")


def amp_plan(amp: bool, amp_dtype: str, device: torch.device) -> AmpPlan:
    """The :class:`AmpPlan` of ``TrainConfig.amp``/``amp_dtype`` on ``device``."""
    if not amp:
        return AmpPlan(False, None, False)
    if amp_dtype == "float16":
        return AmpPlan(True, torch.float16, True)
    if amp_dtype == "bfloat16":
        return AmpPlan(True, torch.bfloat16, False)
    if amp_dtype != "auto":
        raise ValueError(f"amp_dtype={amp_dtype!r}: auto, float16 or bfloat16")
    if device.type == "cuda":
        return AmpPlan(True, torch.float16, True)
    if cpu_has_bf16():
        return AmpPlan(True, torch.bfloat16, False)
    return AmpPlan(False, None, False)


def make_scaler(plan: AmpPlan, device: torch.device, init_scale: float = 65536.0):
    """A ``torch.amp.GradScaler`` for ``device`` when the plan needs one, else None."""
    return torch.amp.GradScaler(device.type, init_scale=init_scale) if plan.scaler else None


@contextmanager
def autocast_dtype(device_type: str, dtype: torch.dtype | None):
    """Within the block, ``torch.autocast(device_type)`` without a dtype uses ``dtype`` (restored afterwards)."""
    if dtype is None:
        yield
        return
    before = torch.get_autocast_dtype(device_type)
    torch.set_autocast_dtype(device_type, dtype)
    try:
        yield
    finally:
        torch.set_autocast_dtype(device_type, before)
