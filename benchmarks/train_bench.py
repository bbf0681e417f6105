"""Benchmark: one SRResNet training step (batch 16, 96x96 HR / 24x24 LR, Adam) — the kit's loop vs a plain loop.

Side by side in one process:
* plain: an eager NCHW float32 loop written here (forward, MSE, zero_grad, backward, step);
* kit: the same step through the assignment's reference ``train_srresnet_epoch`` with what ``sr_utils.trainer``
  turns on for this device: channels_last memory format and autocast (bf16 on CPUs with native bf16, fp16 with a
  GradScaler on CUDA); on CUDA also with ``torch.compile`` when ``--compile`` is given.

Prints ms per step and the ratio; exits 1 if the kit's loop is not >= 1.3x the plain one.

    .venv/bin/python benchmarks/train_bench.py [--steps 6]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

TARGET = 1.3


def timed(step, steps: int) -> float:
    import torch

    step()  # warm-up (oneDNN/cuDNN pick their kernels)
    times = []
    for _ in range(steps):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (CUDA; slow to compile)")
    args = ap.parse_args(argv)
    import torch  # (after the arguments: --help answers at once)
    import torch.nn.functional as F

    from course.reference import load_reference
    from sr_utils.trainer import cpu_has_bf16, default_device

    models, solver = load_reference()
    device = default_device()
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    lr = torch.rand(16, 3, 24, 24, device=device)
    hr = torch.rand(16, 3, 96, 96, device=device) * 2 - 1

    plain = models.SRResNet().to(device)
    opt_plain = torch.optim.Adam(plain.parameters(), lr=1e-4)

    def plain_step():
        loss = F.mse_loss(plain(lr), hr)
        opt_plain.zero_grad()
        loss.backward()
        opt_plain.step()

    def kit(amp: bool, compiled: bool = False):
        net = models.SRResNet().to(device).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        run_net = torch.compile(net) if compiled else net
        scaler = torch.amp.GradScaler("cuda") if amp and cuda else None
        return lambda: solver.train_srresnet_epoch(run_net, [(lr, hr)], opt, device, amp=amp, scaler=scaler)

    amp = cuda or cpu_has_bf16()
    variants = {"plain eager NCHW fp32": plain_step}
    variants["kit: channels_last"] = kit(False)
    if amp:
        variants[f"kit: channels_last + {'fp16 AMP' if cuda else 'bf16 autocast'}"] = kit(True)
    if args.compile:
        variants["kit: + torch.compile"] = kit(amp, compiled=True)
    print(f"SRResNet train step, batch 16, 96x96, {device} "
          f"({torch.get_num_threads()} threads), torch {torch.__version__}, native CPU bf16: {cpu_has_bf16()}")
    results = {name: timed(step, args.steps) for name, step in variants.items()}
    base = results["plain eager NCHW fp32"]
    for name, ms in results.items():
        print(f"{name:<40} {ms:9.1f} ms/step   {base / ms:5.2f}x")
    # what sr_utils.trainer does by default on this device
    kit_name = [n for n in results if n.startswith("kit: channels_last + ")] or ["kit: channels_last"]
    ratio = base / results[kit_name[0]]
    print(f"kit's loop as the trainer runs it ({kit_name[0]}): {ratio:.2f}x the plain loop; target >= {TARGET}x: "
          f"{'met' if ratio >= TARGET else 'MISSED'}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
