"""SRDataset: aligned crops, augmentation, conventions, determinism with workers; SREvalDataset."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from data_tools.prepare import prepare
from data_tools.samples import build_samples
from sr_utils.datasets import SRDataset, make_train_loader
from sr_utils.imresize import imresize


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    build_samples(root, progress=False)
    prepare(root, progress=False)
    return root / "lists" / "samples_train_x4.json"


def test_shapes_lengths_and_conventions(samples):
    ds = SRDataset(samples, patches_per_image=7, augment=False)
    assert len(ds) == 7 * len(ds.names)
    lr, hr = ds[3]
    assert lr.shape == (3, 24, 24) and hr.shape == (3, 96, 96) and lr.dtype == hr.dtype == torch.float32
    assert 0 <= lr.min() and lr.max() <= 1 and -1 <= hr.min() and hr.max() <= 1 and hr.min() < 0
    ds01 = SRDataset(samples, patches_per_image=7, augment=False, lr_convention="imagenet-norm",
                     hr_convention="[0, 1]")
    lr2, hr2 = ds01[3]
    torch.testing.assert_close(hr2, (hr + 1) / 2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    torch.testing.assert_close(lr2, (lr - mean) / std)
    x2 = SRDataset(samples, crop_size=64)
    assert x2[0][0].shape == (3, 16, 16)
    with pytest.raises(ValueError, match="multiple of the scale"):
        SRDataset(samples, crop_size=90)
    with pytest.raises(ValueError, match="lr_convention"):
        SRDataset(samples, lr_convention="[-1, 1]")
    with pytest.raises(IndexError):
        ds[len(ds)]


@pytest.mark.parametrize("augment", [False, True])
def test_lr_patch_is_the_resized_hr_patch(samples, augment):
    """No off-by-one: imresize(HR patch, 1/4) equals the LR patch away from the patch border."""
    ds = SRDataset(samples, augment=augment, seed=3)
    plan = ds.crop_plan(np.arange(0, len(ds), 37))
    lr, hr = ds._patches(plan)
    if augment:
        assert plan[:, 3:].any() and not plan[:, 3:].all(), "each flip/rotation should occur sometimes"
    def undo(a, hflip, vflip, transpose):
        # flips and transposes must be undone before resizing: MATLAB rounds after each 1-D pass, so resizing
        # a transposed patch rounds in the other order (legitimately +-1 off)
        if transpose:
            a = a.transpose(1, 0, 2)
        if vflip:
            a = a[::-1]
        return a[:, ::-1] if hflip else a

    for b in range(len(plan)):
        lo, hi = undo(lr[b], *plan[b, 3:]), undo(hr[b], *plan[b, 3:])
        mine = imresize(np.ascontiguousarray(hi), 0.25)[3:-3, 3:-3]
        assert np.array_equal(mine, lo[3:-3, 3:-3]), f"patch {b} ({plan[b]}) is misaligned"
    # a one-pixel shift of the HR crop would be caught
    shifted = imresize(np.roll(hr[0], 4, axis=0), 0.25)[3:-3, 3:-3]
    assert not np.array_equal(shifted, lr[0][3:-3, 3:-3])


def test_random_crops_cover_the_image_and_change_with_epoch(samples):
    ds = SRDataset(samples, patches_per_image=50, seed=0)
    p0 = ds.crop_plan(np.arange(len(ds)))
    ds.set_epoch(1)
    p1 = ds.crop_plan(np.arange(len(ds)))
    assert not np.array_equal(p0, p1)
    first = p0[p0[:, 0] == 0]
    h, w = ds.lr_sizes[0]
    assert first[:, 1].max() > (h - 24) * 0.7 and first[:, 1].min() < (h - 24) * 0.3
    assert first[:, 2].max() <= w - 24 and first[:, 1].max() <= h - 24
    ds.set_epoch(0)
    assert np.array_equal(ds.crop_plan(np.arange(len(ds))), p0), "same seed and epoch, same crops"


def test_same_batches_with_any_number_of_workers(samples):
    def batches(workers):
        ds = SRDataset(samples, patches_per_image=4, seed=11)
        loader = make_train_loader(ds, batch_size=8, num_workers=workers, seed=5)
        out = []
        for epoch in range(2):
            ds.set_epoch(epoch)
            out += [(lr.clone(), hr.clone()) for lr, hr in loader]
        return out

    a, b = batches(0), batches(2)
    assert len(a) == len(b) > 0
    for (la, ha), (lb, hb) in zip(a, b):
        assert torch.equal(la, lb) and torch.equal(ha, hb)
    assert torch.equal(a[0][0], batches(0)[0][0])


def test_missing_cache_and_stale_list_are_explained(samples, tmp_path):
    import shutil

    root = tmp_path / "d"
    shutil.copytree(samples.parent.parent, root)
    shutil.rmtree(root / "cache")
    with pytest.raises(FileNotFoundError, match="data_tools prepare"):
        SRDataset(root / "lists" / "samples_train_x4.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SRDataset(root / "lists" / "nope_x4.json")


def test_channel_shuffle_permutes_lr_and_hr_alike(samples):
    """Colour augmentation: the same RGB permutation on both patches (bicubic resizing works per channel, so the
    pair stays exact); off by default, and the crops and flips are those of the unshuffled dataset."""
    plain = SRDataset(samples, seed=3)
    ds = SRDataset(samples, seed=3, channel_shuffle=True)
    idx = np.arange(0, len(ds), 11)
    plan = ds.crop_plan(idx)
    assert plain.crop_plan(idx).shape[1] == 6 and np.array_equal(plan[:, :6], plain.crop_plan(idx))
    assert set(plan[:, 6]) == set(range(6)), "every permutation should occur"
    lr, hr = ds._patches(plan)
    lr0, hr0 = plain._patches(plain.crop_plan(idx))
    for b, p in enumerate(plan[:, 6]):
        order = list(itertools.permutations(range(3)))[p]
        assert np.array_equal(lr[b], lr0[b][..., order]) and np.array_equal(hr[b], hr0[b][..., order])
    assert not SRDataset(samples, seed=3, channel_shuffle=True, augment=False).crop_plan(idx)[:, 6].any()
