"""Benchmark: training patches per second (96x96 HR / 24x24 LR, batch 16, augmentation on) and peak memory.

Side by side in one run:
* the kit: ``SRDataset`` over the memory-mapped decoded cache, whole batches per call (``make_train_loader``);
* the course's naive loader: for every patch, open and decode the PNG, crop 96x96, make the LR with PIL.

Uses prepared DIV2K if ``--data-dir`` has ``lists/DIV2K_train_x4.json`` (``python -m data_tools prepare``),
otherwise generates a few DIV2K-like 2040x1356 images in a temporary folder. Prints both rates, the ratio and
peak RSS (largest process: main or any worker); exits 1 if a target is missed:
>= 5,000 patches/s, >= 100x the naive loader, peak RSS <= 2 GB.

    .venv/bin/python benchmarks/data_bench.py [--data-dir data] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_RATE, TARGET_RATIO, TARGET_RSS_GB = 5000, 100, 2.0


class NaiveDataset:
    """The course's approach: decode the whole PNG for every patch, LR made with PIL bicubic (a map-style dataset:
    ``torch.utils.data.DataLoader`` needs only ``__len__`` and ``__getitem__``)."""

    def __init__(self, hr_paths, patches_per_image=100, crop=96, scale=4):
        self.paths, self.ppi, self.crop, self.scale = list(hr_paths), patches_per_image, crop, scale

    def __len__(self):
        return len(self.paths) * self.ppi

    def __getitem__(self, i):
        import torch
        from PIL import Image

        img = Image.open(self.paths[i % len(self.paths)]).convert("RGB")
        left = random.randint(0, img.width - self.crop)
        top = random.randint(0, img.height - self.crop)
        hr = img.crop((left, top, left + self.crop, top + self.crop))
        if random.random() < 0.5:
            hr = hr.transpose(Image.FLIP_LEFT_RIGHT)
        lr = hr.resize((self.crop // self.scale,) * 2, Image.BICUBIC)
        to = lambda im: torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255.0  # noqa: E731
        return to(lr), to(hr) * 2 - 1


def make_div2k_like(folder: Path, n: int) -> Path:
    """``n`` 2040x1356 RGB PNGs made from bundled photos (MATLAB-bicubic upscaled, plus grain), then prepared."""
    from sr_utils.files import write_png
    from data_tools.prepare import prepare
    from data_tools.samples import SAMPLE_TRAIN, load_sample_photo
    from sr_utils.imresize import imresize

    rng = np.random.default_rng(0)
    hr_dir = folder / "DIV2K_train_HR"
    for k in range(n):
        photo = load_sample_photo(SAMPLE_TRAIN[k % len(SAMPLE_TRAIN)]).astype(np.float64)
        big = imresize(photo, output_shape=(1356, 2040)) + rng.normal(0, 4, (1356, 2040, 3))
        write_png(hr_dir / f"{k + 1:04d}.png", np.clip(np.round(big), 0, 255).astype(np.uint8))
    prepare(folder, progress=False)
    return folder / "lists" / "DIV2K_train_x4.json"


def rate(loader, dataset, max_patches: int, max_seconds: float) -> float:
    """Patches per second over whole epochs of ``loader`` (stops after ``max_patches`` or ``max_seconds``)."""
    n, t0, epoch = 0, time.perf_counter(), 0
    while n < max_patches and time.perf_counter() - t0 < max_seconds:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        for lr, hr in loader:
            n += lr.shape[0]
            if n >= max_patches or time.perf_counter() - t0 >= max_seconds:
                break
        epoch += 1
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path("data"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=8, help="DIV2K-like images to generate when DIV2K is absent")
    args = ap.parse_args(argv)
    import torch  # (after the arguments: --help answers at once)

    from sr_utils.datasets import SRDataset, make_train_loader

    torch.set_num_threads(1)
    list_file = args.data_dir / "lists" / "DIV2K_train_x4.json"
    tmp = None
    if not list_file.exists():
        tmp = tempfile.TemporaryDirectory(prefix="data_bench_")
        print(f"DIV2K not prepared in {args.data_dir}: generating {args.images} DIV2K-like 2040x1356 images ...")
        list_file = make_div2k_like(Path(tmp.name), args.images)
    meta = json.loads(list_file.read_text())
    root = (list_file.parent / meta["root"]).resolve()
    hr_paths = [root / im["hr"] for im in meta["images"]]
    print(f"{len(hr_paths)} training images from {list_file}; batch 16, 96x96 HR, augmentation on, "
          f"{args.workers} workers, torch {torch.__version__}")

    ds = SRDataset(list_file, patches_per_image=1000, augment=True)
    kit = rate(make_train_loader(ds, 16, args.workers), ds, 200_000, 15)
    kit0 = rate(make_train_loader(ds, 16, 0), ds, 100_000, 8)
    naive_ds = NaiveDataset(hr_paths)
    naive_loader = torch.utils.data.DataLoader(naive_ds, batch_size=16, shuffle=True, num_workers=args.workers)
    naive = rate(naive_loader, naive_ds, 16 * 12, 30)
    rss_gb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                 resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 2**20

    print(f"{'loader':<44} | {'patches/s':>10}")
    print(f"{'sr_utils SRDataset, ' + str(args.workers) + ' workers':<44} | {kit:10.0f}")
    print(f"{'sr_utils SRDataset, in the main process':<44} | {kit0:10.0f}")
    print(f"{'naive (decode PNG per patch), ' + str(args.workers) + ' workers':<44} | {naive:10.1f}")
    print(f"speed-up {kit / naive:.0f}x; peak RSS of the largest process {rss_gb:.2f} GB")
    checks = {f">= {TARGET_RATE} patches/s": kit >= TARGET_RATE,
              f">= {TARGET_RATIO}x naive": kit / naive >= TARGET_RATIO,
              f"peak RSS <= {TARGET_RSS_GB} GB": rss_gb <= TARGET_RSS_GB}
    print("targets: " + ", ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in checks.items()))
    if tmp is not None:
        tmp.cleanup()
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
