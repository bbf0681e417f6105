"""``python -m sr_utils gpu-check``: the one command a TA runs on the course's GPU machine before class.

For each stage (SRResNet, then SRGAN from it) it trains a few iterations with the kit's GPU settings — fp16 autocast
with a GradScaler per network, channels_last, pinned memory, cuDNN autotuning — with the given ``models``/``solver``
and checks that every loss is finite, that stopping halfway and resuming gives the uninterrupted run's losses and
weights, and prints the memory peak and iterations per second. Passes (returns True) only if every check does. On
a machine without a GPU it runs the same recipe on the CPU (float16 autocast and ``GradScaler("cpu")``), which is
what the test suite checks.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch

__all__ = ["gpu_check"]


def _peak_memory_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _same(a: dict, b: dict) -> float:
    """The largest difference between two runs' logged losses (inf when the rows differ in shape)."""
    worst = 0.0
    for ra, rb in zip(a["history"], b["history"], strict=False):
        for k, v in ra.items():
            if k in ("sec_per_it",):
                continue
            if k not in rb:
                return math.inf
            worst = max(worst, abs(v - rb[k]) / max(1.0, abs(v)))
    return worst if len(a["history"]) == len(b["history"]) else math.inf


def gpu_check(models, solver, data_dir=None, iterations: int = 4, log=print) -> bool:
    """Run the checks (see the module's docstring), printing one line per check; True when all pass."""
    from .checkpoint import load_checkpoint
    from .config import TrainConfig, default_device
    from .vgg import find_vgg19_weights

    device = default_device()
    exact = device.type == "cpu"  # cuDNN autotuning may pick other kernels on a second run: compare to 1e-3
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (no GPU: the same recipe on the CPU)"
    log(f"device: {name}; torch {torch.__version__}" + (f", CUDA {torch.version.cuda}" if device.type == "cuda" else ""))
    ok = True

    def check(passed: bool, what: str) -> None:
        nonlocal ok
        ok &= bool(passed)
        log(f"  [{'ok' if passed else 'FAIL'}] {what}")

    half = max(1, iterations // 2)
    content = "vgg54" if find_vgg19_weights() is not None else "mse"
    common = dict(data_dir=str(data_dir or ""), iterations=iterations, val_every=half, amp=True, amp_dtype="float16",
                  channels_last=True, workers=2 if device.type == "cuda" else 0)
    with tempfile.TemporaryDirectory(prefix="sr-gpu-check-") as tmp:
        for stage in ("srresnet", "srgan"):
            extra = dict(content=content) if stage == "srgan" else {}
            cfg = TrainConfig.from_profile("grading", stage, **common, **extra)
            log(f"{stage}: {iterations} iterations, AMP float16 + GradScaler, channels_last"
                + (f", content {content}" if stage == "srgan" else ""))
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            runs = {}
            try:
                for key, kwargs in (("whole", {}), ("split", {"stop_after": half}), ("split", {"resume": True})):
                    runs[key] = _train(cfg, Path(tmp) / key / stage, models, solver, kwargs)
            except Exception as e:  # report, and go on to the verdict
                check(False, f"training ran: {type(e).__name__}: {e}")
                break
            whole, split = runs["whole"], runs["split"]
            losses = [v for r in whole["history"] for k, v in r.items() if k not in ("step", "lr", "sec_per_it")]
            check(all(math.isfinite(v) for v in losses), "finite losses and validation PSNR")
            skipped = sum(r.get("amp_skipped", 0) for r in whole["history"])
            check(skipped < iterations, f"GradScaler: {skipped} of {iterations} steps skipped (overflow), scale "
                                        f"{whole['history'][-1].get('amp_scale', float('nan')):g}")
            diff = _same(whole, split)
            a = load_checkpoint(Path(tmp) / "whole" / stage / "last.pth")["nets"]["model"]
            b = load_checkpoint(Path(tmp) / "split" / stage / "last.pth")["nets"]["model"]
            wdiff = max(((a[k].double() - b[k].double()).abs().max().item() if a[k].is_floating_point() else
                         float(not torch.equal(a[k], b[k]))) for k in a)
            limit = 0.0 if exact else 1e-3
            check(diff <= limit and wdiff <= (0.0 if exact else 1e-2),
                  f"stop at {half} + resume = one run (losses differ by {diff:.2e}, weights by {wdiff:.2e})")
            sec = sum(r["sec_per_it"] for r in whole["history"]) / max(1, len(whole["history"]))  # per chunk mean
            log(f"  {1 / sec if sec > 0 else float('inf'):.2f} it/s (batch {cfg.batch_size}, crop {cfg.crop_size}); "
                f"memory peak {_peak_memory_mb(device):.0f} MiB ({'GPU' if device.type == 'cuda' else 'process RSS'})")
    log("gpu-check: " + ("PASSED" if ok else "FAILED"))
    return ok


def _train(cfg, out, models, solver, kwargs) -> dict:
    from .trainer import train

    if cfg.stage == "srgan":  # start from the SRResNet this same check just trained
        from dataclasses import replace

        cfg = replace(cfg, srresnet_checkpoint=str(Path(out).parent.parent / "whole" / "srresnet" / "best.pth"))
    return train(cfg, out, models, solver, progress=False, log=lambda *a: None, **kwargs)
