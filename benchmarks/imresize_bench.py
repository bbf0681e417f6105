"""Benchmark: MATLAB-exact imresize of a 2040x1356 RGB uint8 image (DIV2K size) by 1/4 and by 4.

Times the kit's ``sr_utils.imresize.imresize`` and, side by side in the same process, a straightforward
vectorised numpy implementation of the same maths (gather the taps, weighted sum in float64, round after
each pass). Both must give identical pixels. Prints the median of several runs, the ratio, and whether
the target (<= 15 ms for 1/4) holds; exits 1 if it does not.

    .venv/bin/python benchmarks/imresize_bench.py [--runs 9]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from sr_utils.imresize import _plan, contributions, imresize

TARGET_MS = 15.0


def numpy_baseline(img: np.ndarray, scale: float, edge: str = "symmetric") -> np.ndarray:
    """Plain vectorised numpy: per 1-D pass, gather taps with fancy indexing and sum in float64."""
    x = img
    for axis, out_len, s in _plan(img.shape[:2], scale, None):
        w, idx = contributions(x.shape[axis], out_len, s, "bicubic", edge)
        gathered = np.take(x, idx, axis=axis).astype(np.float64)  # (out, P, W, C) or (H, out, P, C)
        wshape = [1] * gathered.ndim
        wshape[axis], wshape[axis + 1] = w.shape
        y = (gathered * w.reshape(wshape)).sum(axis=axis + 1)
        r = np.floor(y)
        x = np.clip(r + ((y - r) >= 0.5), 0, 255).astype(np.uint8)
    return x


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up (compiles the kernels on the first call)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args(argv)
    import numba

    img = np.random.default_rng(0).integers(0, 256, (1356, 2040, 3), dtype=np.uint8)
    print(f"imresize of a 2040x1356 RGB uint8 image, median of {args.runs} runs, "
          f"{numba.get_num_threads()} threads, numba {numba.__version__}, numpy {np.__version__}")
    print(f"{'scale':>6} | {'sr_utils (ms)':>13} | {'numpy baseline (ms)':>19} | {'speed-up':>8} | identical")
    ok = True
    for scale in (1 / 4, 4):
        kit = median_ms(lambda: imresize(img, scale), args.runs)
        base = median_ms(lambda: numpy_baseline(img, scale), max(3, args.runs // 3))
        same = np.array_equal(imresize(img, scale), numpy_baseline(img, scale))
        label = "1/4" if scale < 1 else "4"
        print(f"{label:>6} | {kit:13.1f} | {base:19.1f} | {base / kit:7.1f}x | {same}")
        ok &= same
        if scale < 1:
            met = kit <= TARGET_MS
            ok &= met
            target_line = f"target: 1/4 in <= {TARGET_MS:.0f} ms, bit-exact: {'met' if met else 'MISSED'}"
    print(target_line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
