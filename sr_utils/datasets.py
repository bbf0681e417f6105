"""Datasets: random aligned LR/HR training patches from the decoded cache, and whole images for evaluation.

Both read what ``python -m data_tools prepare`` writes: ``lists/<split>_x<scale>.json`` and, for training,
``cache/<split>_x<scale>/{hr,lr}.u8`` (every image's uint8 RGB pixels back to back) + ``index.json``.

Training never decodes a PNG: patches are cut from a memory map of the cache, so a 2K DIV2K image costs a few
page faults per patch instead of a 30 ms PNG decode. Pages read are released to the OS every few hundred
patches (``madvise(MADV_DONTNEED)``), so the resident memory stays bounded whatever the dataset size.

Randomness (crop position, flips, rotation, channel order) is a pure function of ``(seed, epoch, index)``: the same
batches come out for a given seed whatever the number of DataLoader workers. Call :meth:`SRDataset.set_epoch` each
epoch.
"""
from __future__ import annotations

import json
import mmap
import os
from pathlib import Path

import numpy as np
import torch

from .color import IMAGENET_MEAN, IMAGENET_STD, load_rgb
from .i18n import tr
from .lists import cache_dir, read_list

__all__ = ["SRDataset", "SREvalDataset", "make_train_loader", "LR_CONVENTIONS", "HR_CONVENTIONS"]

LR_CONVENTIONS = ("[0, 1]", "imagenet-norm")
HR_CONVENTIONS = ("[-1, 1]", "[0, 1]")
_RELEASE_EVERY = 512  # patches between releases of the mapped pages
_RGB_ORDERS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))  # channel_shuffle's permutations


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A counter-based hash (SplitMix64 finaliser) on uint64 arrays: reproducible random bits per index."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)).astype(np.uint64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _random_bits(seed: int, epoch: int, indices: np.ndarray, streams: int) -> np.ndarray:
    """``(len(indices), streams)`` uint64 random words, a pure function of (seed, epoch, index, stream)."""
    with np.errstate(over="ignore"):
        base = _splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * np.uint64(0x100000001B3)
                           + np.uint64(epoch) * np.uint64(0xD6E8FEB86659FD93))
        key = _splitmix64(base ^ indices.astype(np.uint64) * np.uint64(0xA24BAED4963EE407))
        return _splitmix64(key[:, None] + np.arange(streams, dtype=np.uint64)[None, :])


class _Cache:
    """The memory-mapped decoded cache of one split (opened lazily, once per process)."""

    def __init__(self, folder: Path):
        self.folder = folder
        index_file = folder / "index.json"
        if not index_file.is_file():
            raise FileNotFoundError(tr("decoded cache {folder} is missing: run `python -m data_tools prepare "
                                       "--cache {split}` to build it", folder=folder,
                                       split=folder.name.rsplit("_x", 1)[0]))
        self.index = json.loads(index_file.read_text())["images"]
        self._pid = None

    def _open(self):
        self._maps = {}
        for key in ("hr", "lr"):
            with open(self.folder / f"{key}.u8", "rb") as f:
                self._maps[key] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._arrays = {key: np.frombuffer(m, dtype=np.uint8) for key, m in self._maps.items()}
        self._pid = os.getpid()
        self._since_release = 0

    def image(self, key: str, i: int) -> np.ndarray:
        """``(H, W, 3)`` uint8 view of image ``i`` (``key`` "hr" or "lr"); no copy, no decode."""
        if self._pid != os.getpid():  # first use in this process (e.g. a DataLoader worker)
            self._open()
        e = self.index[i][key]
        n = int(np.prod(e["shape"]))
        return self._arrays[key][e["offset"]: e["offset"] + n].reshape(e["shape"])

    def touched(self, n: int) -> None:
        """Count patches read; every ``_RELEASE_EVERY`` drop the mapped pages from this process's RSS
        (they stay in the page cache, so re-reading them is cheap)."""
        self._since_release += n
        if self._since_release >= _RELEASE_EVERY and hasattr(mmap, "MADV_DONTNEED"):
            for m in self._maps.values():
                m.madvise(mmap.MADV_DONTNEED)
            self._since_release = 0

    def __getstate__(self):  # workers re-open the maps themselves
        state = self.__dict__.copy()
        for k in ("_maps", "_arrays"):
            state.pop(k, None)
        state["_pid"] = None
        return state


class SRDataset(torch.utils.data.Dataset):
    """Random aligned training patches of a prepared split.

    Args:
        list_file: ``lists/<split>_x<scale>.json`` written by ``python -m data_tools prepare`` (its cache
            must have been built: ``prepare`` builds it for splits named ``*train*``, or ``--cache SPLIT``).
        crop_size: HR patch side (default 96, as the paper); must be a multiple of the list's scale.
            The LR patch is ``crop_size / scale`` (24 at x4).
        patches_per_image: patches drawn from each image per epoch (default 100, as the course).
        augment: random horizontal flip, vertical flip and 90-degree rotation (each with p = 0.5).
        channel_shuffle: with ``augment``, also a random permutation of the RGB channels (one of 6, the same for
            the LR and the HR patch). Bicubic downscaling works channel by channel, so a permuted pair is still an
            exact LR/HR pair, of another colour: worth it on a small, colour-poor training split (the bundled
            samples: 7 grey photos of 12), where the model otherwise never sees e.g. saturated blues and shifts
            them on test photos. Off by default; ``crop_plan`` then gets a 7th column (the permutation's index).
        lr_convention: ``"[0, 1]"`` (default) or ``"imagenet-norm"``.
        hr_convention: ``"[-1, 1]"`` (default, matches SRResNet's tanh output) or ``"[0, 1]"``.
        seed: base seed; crops and flips are a pure function of ``(seed, epoch, index)``.

    Items are ``(lr, hr)`` float32 tensors ``(3, crop/scale, crop/scale)`` and ``(3, crop, crop)``, RGB.
    ``__getitems__`` returns whole batches ``(B, 3, h, w)`` at once (use :func:`make_train_loader`).
    """

    def __init__(self, list_file, crop_size: int = 96, patches_per_image: int = 100, augment: bool = True,
                 lr_convention: str = "[0, 1]", hr_convention: str = "[-1, 1]", seed: int = 0,
                 channel_shuffle: bool = False):
        meta, _ = read_list(list_file)
        self.scale = int(meta["scale"])
        if crop_size % self.scale:
            raise ValueError(tr("crop_size {crop_size} is not a multiple of the scale {scale}", crop_size=crop_size,
                                scale=self.scale))
        if lr_convention not in LR_CONVENTIONS:
            raise ValueError(tr("lr_convention must be one of {known}, got {value!r}", known=LR_CONVENTIONS,
                                value=lr_convention))
        if hr_convention not in HR_CONVENTIONS:
            raise ValueError(tr("hr_convention must be one of {known}, got {value!r}", known=HR_CONVENTIONS,
                                value=hr_convention))
        if patches_per_image < 1:
            raise ValueError(tr("patches_per_image must be >= 1, got {value}", value=patches_per_image))
        self.split = meta["split"]
        self.crop_size, self.lr_crop = crop_size, crop_size // self.scale
        self.patches_per_image, self.augment, self.seed, self.epoch = patches_per_image, augment, seed, 0
        self.lr_convention, self.hr_convention = lr_convention, hr_convention
        self.channel_shuffle = channel_shuffle
        self.cache = _Cache(cache_dir(Path(list_file).resolve().parent.parent, self.split, self.scale))
        self.names = [e["name"] for e in self.cache.index]
        if [im["name"] for im in meta["images"]] != self.names:
            raise ValueError(tr("cache of {split} is out of date with {list_file}: run `python -m data_tools "
                                "prepare` again", split=self.split, list_file=list_file))
        self.lr_sizes = np.array([e["lr"]["shape"][:2] for e in self.cache.index], dtype=np.int64)
        small = [n for n, (h, w) in zip(self.names, self.lr_sizes) if h < self.lr_crop or w < self.lr_crop]
        if small:
            raise ValueError(tr("{split}: images smaller than the {crop_size}px crop: {images}", split=self.split,
                                crop_size=crop_size, images=", ".join(small)))

    def __len__(self) -> int:
        return len(self.names) * self.patches_per_image

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of crops (call at the start of each epoch, before iterating)."""
        self.epoch = int(epoch)

    def crop_plan(self, indices) -> np.ndarray:
        """``(B, 6)`` int64: image, LR top, LR left, hflip, vflip, transpose for each dataset index (``(B, 7)``
        with ``channel_shuffle``: + the index of the RGB permutation in ``_RGB_ORDERS``, 0 = unchanged)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(tr("index out of range for {n} patches", n=len(self)))
        image = idx % len(self.names)
        bits = _random_bits(self.seed, self.epoch, idx, 4)  # stream 3 (permutation) leaves streams 0-2 unchanged
        h, w = self.lr_sizes[image, 0], self.lr_sizes[image, 1]
        top = (bits[:, 0] % (h - self.lr_crop + 1).astype(np.uint64)).astype(np.int64)
        left = (bits[:, 1] % (w - self.lr_crop + 1).astype(np.uint64)).astype(np.int64)
        flips = ((bits[:, 2:3] >> np.arange(3, dtype=np.uint64)) & np.uint64(1)).astype(np.int64)
        if not self.augment:
            flips[:] = 0
        if not self.channel_shuffle:
            return np.column_stack([image, top, left, flips])
        order = (bits[:, 3] % np.uint64(len(_RGB_ORDERS))).astype(np.int64) * int(self.augment)
        return np.column_stack([image, top, left, flips, order])

    def _patches(self, plan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, lc, hc = self.scale, self.lr_crop, self.crop_size
        lr = np.empty((len(plan), lc, lc, 3), np.uint8)
        hr = np.empty((len(plan), hc, hc, 3), np.uint8)
        for b, (i, top, left, hflip, vflip, transpose, *order) in enumerate(plan):
            lo = self.cache.image("lr", i)[top: top + lc, left: left + lc]
            hi = self.cache.image("hr", i)[top * s: top * s + hc, left * s: left * s + hc]
            if hflip:
                lo, hi = lo[:, ::-1], hi[:, ::-1]
            if vflip:
                lo, hi = lo[::-1], hi[::-1]
            if transpose:
                lo, hi = lo.transpose(1, 0, 2), hi.transpose(1, 0, 2)
            if order and order[0]:
                rgb = _RGB_ORDERS[order[0]]
                lo, hi = lo[..., rgb], hi[..., rgb]
            lr[b], hr[b] = lo, hi
        self.cache.touched(len(plan))
        return lr, hr

    def _to_tensors(self, lr: np.ndarray, hr: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        lr_t = torch.from_numpy(lr).permute(0, 3, 1, 2).float().div_(255.0)
        hr_t = torch.from_numpy(hr).permute(0, 3, 1, 2).float()
        if self.lr_convention == "imagenet-norm":
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            lr_t = (lr_t - mean) / std
        hr_t = hr_t.div_(127.5).sub_(1.0) if self.hr_convention == "[-1, 1]" else hr_t.div_(255.0)
        return lr_t.contiguous(), hr_t.contiguous()

    def __getitems__(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch at once: ``(B, 3, crop/scale, crop/scale)`` and ``(B, 3, crop, crop)``."""
        return self._to_tensors(*self._patches(self.crop_plan(indices)))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = self.__getitems__([index])
        return lr[0], hr[0]


def _keep_batch(batch):
    """collate_fn for datasets whose ``__getitems__`` already returns a batch."""
    return batch


def make_train_loader(dataset: SRDataset, batch_size: int = 16, num_workers: int = 2, seed: int = 0,
                      shuffle: bool = True, drop_last: bool = True, pin_memory: bool | None = None):
    """DataLoader over an :class:`SRDataset` that fetches whole batches (one call per batch, not per patch).

    Shuffling uses a generator seeded with ``seed``: the batches are the same for any ``num_workers``.
    Workers are started per epoch (not persistent) so that they see :meth:`SRDataset.set_epoch`.
    """
    gen = torch.Generator().manual_seed(seed)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, num_workers=num_workers,
        collate_fn=_keep_batch, generator=gen, pin_memory=pin_memory,
        prefetch_factor=4 if num_workers > 0 else None)


class SREvalDataset(torch.utils.data.Dataset):
    """Whole images of a prepared split for evaluation: ``(name, lr, hr)`` with ``(h, w, 3)`` / ``(h*s, w*s, 3)``
    uint8 RGB numpy arrays, HR modcropped top-left to ``scale`` times the LR size."""

    def __init__(self, list_file):
        meta, self.root = read_list(list_file)
        self.split, self.scale, self.images = meta["split"], int(meta["scale"]), meta["images"]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[str, np.ndarray, np.ndarray]:
        im = self.images[i]
        lr = load_rgb(self.root / im["lr"])
        hr = load_rgb(self.root / im["hr"])
        h, w = lr.shape[0] * self.scale, lr.shape[1] * self.scale
        if hr.shape[0] < h or hr.shape[1] < w:
            raise ValueError(tr("{path}: LR {lr_w}x{lr_h} is larger than HR {hr_w}x{hr_h} / {scale}",
                                path=self.root / im["lr"], lr_w=lr.shape[1], lr_h=lr.shape[0], hr_w=hr.shape[1],
                                hr_h=hr.shape[0], scale=self.scale))
        return im["name"], lr, hr[:h, :w]
