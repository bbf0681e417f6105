"""Tiled inference (sr_utils.tiling) equals the untiled forward of an SRResNet-like network, and fails visibly when
the overlap is too small. The network is built here (not the course's models) with few channels so it runs fast."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sr_utils.tiling import DEFAULT_OVERLAP, receptive_field_radius, tiled_forward

SCALE = 4


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _conv(cin, cout, k):
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class _ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(_conv(c, c, 3), nn.BatchNorm2d(c), nn.PReLU(), _conv(c, c, 3), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.body(x)


class TinySRResNet(nn.Module):
    """SRResNet (Ledig et al. 2017) with few channels: 9x9 conv + PReLU, residual blocks, 3x3 conv + BN + long skip,
    two x2 sub-pixel blocks, 9x9 conv + tanh. (N, 3, h, w) -> (N, 3, 4h, 4w)."""

    def __init__(self, c=8, n_blocks=4):
        super().__init__()
        self.head = nn.Sequential(_conv(3, c, 9), nn.PReLU())
        self.blocks = nn.Sequential(*[_ResBlock(c) for _ in range(n_blocks)])
        self.trunk_end = nn.Sequential(_conv(c, c, 3), nn.BatchNorm2d(c))
        self.up = nn.Sequential(*[nn.Sequential(_conv(c, 4 * c, 3), nn.PixelShuffle(2), nn.PReLU()) for _ in range(2)])
        self.tail = nn.Sequential(_conv(c, 3, 9), nn.Tanh())

    def forward(self, x):
        h = self.head(x)
        return self.tail(self.up(self.trunk_end(self.blocks(h)) + h))


def _model(c=8, n_blocks=4, seed=0):
    torch.manual_seed(seed)
    m = TinySRResNet(c, n_blocks)
    for bn in m.modules():  # random running statistics and affine parameters, so that BN is not the identity
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.normal_(0, 0.1)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.normal_(0, 0.1)
    return m.eval()


def _radius(n_blocks):
    # head 9x9: 4; residual blocks: 2 * n_blocks; 3x3 after the trunk: 1; sub-pixel conv at 1x: 1;
    # sub-pixel conv at 2x (0.5 LR px) + last 9x9 at 4x (1 LR px), counted in whole LR pixels: 2
    return 4 + 2 * n_blocks + 1 + 1 + 2


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def radius(model):
    return receptive_field_radius(model, SCALE)


@pytest.fixture(scope="module")
def lr():
    return torch.rand(2, 3, 70, 53, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def reference(model, lr):
    with torch.no_grad():
        return model(lr)


class _Recorder(nn.Module):
    """Records the input sizes; raises a fake CUDA OOM when the input has more than ``limit`` pixels."""

    def __init__(self, model, limit=None):
        super().__init__()
        self.model, self.limit, self.calls, self.ooms = model, limit, [], []
        self.eval()

    def forward(self, x):
        if self.limit is not None and x.shape[2] * x.shape[3] > self.limit:
            self.ooms.append(tuple(x.shape[2:]))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        self.calls.append(tuple(x.shape[2:]))
        return self.model(x)


def _max_diff(a, b):
    return (a - b).abs().max().item()


def test_measured_radius_matches_the_architecture(model, radius):
    assert radius == _radius(4) == 16


def test_default_overlap_covers_srresnet():
    # the radius depends on depth and kernel sizes, not on the width: a 16-block SRResNet with 4 channels
    srresnet = _model(c=4, n_blocks=16)
    assert receptive_field_radius(srresnet, SCALE) == _radius(16) == 40 <= DEFAULT_OVERLAP
    # numerically, dependence decays fast with distance: the effective radius at 1e-10 is smaller
    assert 16 <= receptive_field_radius(srresnet, SCALE, method="delta", max_radius=40) < 40


def test_measurement_leaves_model_untouched(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    try:
        receptive_field_radius(model, SCALE)
        assert model.training
    finally:
        model.eval()
    assert all(torch.equal(before[k], v) and v.dtype == before[k].dtype for k, v in model.state_dict().items())


def test_tiled_equals_untiled(model, lr, reference, radius):
    rec = _Recorder(model)
    with torch.no_grad():
        out = tiled_forward(rec, lr, SCALE, tile=24, overlap=radius)
    assert out.shape == reference.shape == (2, 3, 280, 212) and out.dtype == lr.dtype
    assert _max_diff(out, reference) <= 1e-5
    # really tiled: ceil(70/24) x ceil(53/24) tiles, none larger than the tile plus the overlap on both sides
    assert len(rec.calls) == math.ceil(70 / 24) * math.ceil(53 / 24) == 9
    assert max(max(c) for c in rec.calls) <= 24 + 2 * radius


def test_receptive_field_is_the_default_overlap(model, lr, reference, radius):
    with torch.no_grad():
        assert _max_diff(tiled_forward(model, lr, SCALE, tile=24, receptive_field=radius), reference) <= 1e-5
        assert _max_diff(tiled_forward(model, lr, SCALE, tile=24), reference) <= 1e-5  # DEFAULT_OVERLAP


def test_too_small_overlap_is_visible(model, lr, reference):
    with torch.no_grad():
        out = tiled_forward(model, lr, SCALE, tile=24, overlap=2)
    assert _max_diff(out, reference) > 1e-2


@pytest.mark.parametrize("tile", [7, 17, 31, 52, 69])
def test_tiles_that_do_not_divide_the_image(model, lr, reference, radius, tile):
    with torch.no_grad():
        assert _max_diff(tiled_forward(model, lr, SCALE, tile=tile, overlap=radius), reference) <= 1e-5


def test_image_smaller_than_a_tile(model):
    x = torch.rand(1, 3, 10, 7, generator=torch.Generator().manual_seed(2))
    rec = _Recorder(model)
    with torch.no_grad():
        out, ref = tiled_forward(rec, x, SCALE, tile=24), model(x)
    assert rec.calls == [(10, 7)]
    assert out.shape == (1, 3, 40, 28) and _max_diff(out, ref) <= 1e-6


def test_scale_inferred_and_float64(radius):
    m64 = _model().double()
    x = torch.rand(1, 3, 37, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out, ref = tiled_forward(m64, x, None, tile=16, overlap=radius), m64(x)
    assert out.shape == (1, 3, 148, 120) and out.dtype == torch.float64 and _max_diff(out, ref) <= 1e-12
    # the measured radius is tight: one pixel less and the far end of the receptive field is missed (the
    # difference is tiny, ~1e-8, because dependence decays with distance: float32 could not see it)
    with torch.no_grad():
        assert _max_diff(tiled_forward(m64, x, None, tile=16, overlap=radius - 1), ref) > 1e-12


def test_fake_oom_halves_the_tile(model, lr, reference, radius):
    rec = _Recorder(model, limit=48 * 48)  # 64 + 2*16 does not fit; 16 + 2*16 = 48 does
    with torch.no_grad():
        out = tiled_forward(rec, lr, SCALE, tile=64, overlap=radius, on_oom="halve", min_tile=8)
    assert _max_diff(out, reference) <= 1e-5
    assert rec.ooms and all(h * w > 48 * 48 for h, w in rec.ooms)
    assert all(h * w <= 48 * 48 for h, w in rec.calls)


def test_fake_oom_gives_up_at_min_tile(model, lr, radius):
    rec = _Recorder(model, limit=40 * 40)  # the whole 70x53 image is one tile of 128: halving starts from 70
    with torch.no_grad(), pytest.raises(torch.cuda.OutOfMemoryError, match=r"tile=32 .*\[70, 35, 32\]"):
        tiled_forward(rec, lr, SCALE, tile=128, overlap=radius, on_oom="halve")
    with torch.no_grad(), pytest.raises(torch.cuda.OutOfMemoryError, match=r"tile=128.*on_oom='halve'"):
        tiled_forward(rec, lr, SCALE, tile=128, overlap=radius)  # default on_oom="raise": no retry
    assert len(rec.ooms) == 4


@pytest.mark.parametrize("kwargs,match", [
    (dict(tile=0), "tile must be an int >= 1"),
    (dict(tile=-3), "tile must be an int >= 1"),
    (dict(tile=16.0), "tile must be an int"),
    (dict(tile=True), "tile must be an int"),
    (dict(overlap=-1), "overlap must be an int >= 0"),
    (dict(overlap=2.5), "overlap must be an int"),
    (dict(receptive_field=-2), "receptive_field must be an int >= 0"),
    (dict(scale=0), "scale must be an int >= 1"),
    (dict(on_oom="retry"), "on_oom must be one of"),
    (dict(min_tile=0), "min_tile must be an int >= 1"),
    (dict(lr=torch.rand(3, 8, 8)), "4-D"),
    (dict(lr=torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), "floating-point"),
    (dict(lr=torch.rand(1, 3, 0, 8)), "empty"),
    (dict(scale=2), r"scale 2 the model must return \(1, C, 16, 16\), got \(1, 3, 32, 32\)"),
])
def test_bad_arguments(model, kwargs, match):
    args = dict(model=model, lr=torch.rand(1, 3, 8, 8), scale=SCALE) | kwargs
    with torch.no_grad(), pytest.raises(ValueError, match=match):
        tiled_forward(**args)


def test_receptive_field_of_pointwise_and_global_models():
    def up(x):
        return x.repeat_interleave(2, 2).repeat_interleave(2, 3)

    assert receptive_field_radius(up, 2, in_channels=3) == 0
    with pytest.raises(ValueError, match="exceeds max_radius=16"):  # depends on the image mean: global
        receptive_field_radius(lambda x: up(x + x.mean(dim=(2, 3), keepdim=True)), 2, max_radius=16, in_channels=3)


def test_training_mode_warns(model):
    model.train()
    try:
        with torch.no_grad(), pytest.warns(UserWarning, match="training mode"):
            tiled_forward(model, torch.rand(1, 3, 8, 8), SCALE)
    finally:
        model.eval()


def test_overlap_below_the_receptive_field_warns(model):
    with torch.no_grad(), pytest.warns(UserWarning, match="overlap 2 < receptive_field 16"):
        tiled_forward(model, torch.rand(1, 3, 8, 8), SCALE, overlap=2, receptive_field=16)
