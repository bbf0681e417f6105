"""TruncatedVGG19: the φ(i, j) cut, freezing, eval mode, gradient flow, and weights lookup (offline, weights=None
or small random state dicts written to tmp_path; nothing is downloaded)."""
from __future__ import annotations

import torch
import torchvision
from torch import nn

import pytest

from sr_utils import vgg as vgg_mod
from sr_utils.vgg import VGG19_WEIGHTS_FILENAME, VGG19_WEIGHTS_URL, TruncatedVGG19, find_vgg19_weights


@pytest.fixture(scope="module")
def vgg54() -> TruncatedVGG19:
    return TruncatedVGG19(5, 4, weights=None)


@pytest.fixture(scope="module")
def reference_features() -> nn.Sequential:
    """torchvision's vgg19().features, structure only (meta device: no memory, no init time)."""
    with torch.device("meta"):
        return torchvision.models.vgg19(weights=None).features


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A random torchvision vgg19 state dict (whole network, classifier included: 548 MB, as the real file) saved
    as vgg19-dcbb9e9d.pth; deleted afterwards so that pytest's kept temp dirs do not pile up half-gigabytes."""
    torch.manual_seed(0)
    state = torchvision.models.vgg19(weights=None).state_dict()
    path = tmp_path_factory.mktemp("vggw") / VGG19_WEIGHTS_FILENAME
    torch.save(state, path)
    yield path, state
    path.unlink(missing_ok=True)


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """No env var and an empty hub dir: nothing can be found."""
    monkeypatch.delenv("SR_VGG19_WEIGHTS", raising=False)
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


def test_vgg54_parameter_count(vgg54):
    assert sum(p.numel() for p in vgg54.parameters()) == 20_024_384


def test_vgg54_structure_matches_torchvision(vgg54, reference_features):
    ref = reference_features[:36]
    ours = list(vgg54.features)
    assert len(ours) == len(ref) == 36
    for a, b in zip(ours, ref):
        assert type(a) is type(b)
        if isinstance(a, nn.Conv2d):
            assert a.weight.shape == b.weight.shape and a.bias.shape == b.bias.shape
            assert (a.kernel_size, a.stride, a.padding) == (b.kernel_size, b.stride, b.padding)
    assert isinstance(ours[-1], nn.ReLU)
    assert list(vgg54.state_dict()) == [f"features.{k}" for k in ref.state_dict()]


def test_vgg54_output_shape(vgg54):
    out = vgg54(torch.randn(2, 3, 96, 96))
    assert out.shape == (2, 512, 6, 6) and out.dtype == torch.float32
    assert out.min() >= 0  # ends with a ReLU


@pytest.mark.parametrize("i, j, n_layers, channels", [(1, 1, 2, 64), (2, 2, 9, 128), (3, 1, 12, 256),
                                                       (4, 3, 25, 512)])
def test_other_cuts(i, j, n_layers, channels, reference_features):
    m = TruncatedVGG19(i, j, weights=None)
    assert len(m.features) == n_layers
    assert [type(layer) for layer in m.features] == [type(layer) for layer in reference_features[:n_layers]]
    assert isinstance(m.features[-1], nn.ReLU)
    s = 96 // 2 ** (i - 1)
    assert m(torch.randn(1, 3, 96, 96)).shape == (1, channels, s, s)


@pytest.mark.parametrize("i, j, match", [(0, 1, "1..5"), (6, 1, "1..5"), (1, 3, "1..2"), (2, 0, "1..2"),
                                         (3, 5, "1..4"), (5, 0, "1..4")])
def test_invalid_ij_raise(i, j, match):
    with pytest.raises(ValueError, match=match):
        TruncatedVGG19(i, j, weights=None)


def test_frozen_and_always_eval(vgg54):
    assert all(not p.requires_grad for p in vgg54.parameters())
    assert not vgg54.training and not any(m.training for m in vgg54.modules())

    class Parent(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Conv2d(3, 3, 1)
            self.vgg = vgg54

    parent = Parent()
    parent.train()
    assert parent.training and parent.head.training
    assert not any(m.training for m in vgg54.modules())
    vgg54.train(True)
    assert not vgg54.training
    parent.eval()
    assert not vgg54.training


def test_gradient_reaches_input_not_vgg(vgg54):
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    vgg54(x).pow(2).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg54.parameters())


def test_forward_rejects_bad_input(vgg54):
    with pytest.raises(ValueError, match="N, 3, H, W"):
        vgg54(torch.randn(3, 32, 32))


def _assert_features_equal(m: TruncatedVGG19, state: dict) -> None:
    own = m.state_dict()
    assert own  # something was compared
    for k, v in own.items():
        assert torch.equal(v, state[k]), k


def test_load_from_path(weights_file, tmp_path):
    path, state = weights_file
    m = TruncatedVGG19(2, 2, weights=path)
    _assert_features_equal(m, state)
    assert m.weights_path == path
    m = TruncatedVGG19(5, 4, weights=str(path))
    _assert_features_equal(m, state)
    assert all(not p.requires_grad for p in m.parameters()) and not m.training
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TruncatedVGG19(weights=tmp_path / "nope.pth")


def test_load_from_env(weights_file, no_weights, monkeypatch):
    path, state = weights_file
    monkeypatch.setenv("SR_VGG19_WEIGHTS", str(path))
    assert find_vgg19_weights() == path
    m = TruncatedVGG19(3, 4, weights="imagenet")
    assert m.weights_path == path
    _assert_features_equal(m, state)


def test_missing_weights_message(no_weights):
    assert find_vgg19_weights() is None
    with pytest.raises(FileNotFoundError) as info:
        TruncatedVGG19()
    msg = str(info.value)
    assert VGG19_WEIGHTS_URL in msg
    assert str(no_weights / "checkpoints" / VGG19_WEIGHTS_FILENAME) in msg
    assert "SR_VGG19_WEIGHTS" in msg and 'weights="IMAGENET1K_V1"' in msg


def test_env_pointing_nowhere_is_listed(no_weights, monkeypatch, tmp_path):
    monkeypatch.setenv("SR_VGG19_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        TruncatedVGG19()


def test_hub_cache_is_used(weights_file, no_weights):
    path, state = weights_file
    (no_weights / "checkpoints").mkdir()
    cached = no_weights / "checkpoints" / VGG19_WEIGHTS_FILENAME
    cached.symlink_to(path)
    assert find_vgg19_weights() == cached
    m = TruncatedVGG19(1, 2)
    assert m.weights_path == cached
    _assert_features_equal(m, state)


def test_env_takes_precedence_over_hub(weights_file, no_weights, monkeypatch):
    path, _ = weights_file
    (no_weights / "checkpoints").mkdir()
    (no_weights / "checkpoints" / VGG19_WEIGHTS_FILENAME).write_bytes(b"")
    monkeypatch.setenv("SR_VGG19_WEIGHTS", str(path))
    assert find_vgg19_weights() == path


def test_wrong_file_raises_clearly(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"classifier.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(KeyError, match="features.0.weight"):
        TruncatedVGG19(1, 1, weights=bad)


def test_no_tensors_at_import_and_torchvision_never():
    """Importing the module builds nothing; building a network imports no torchvision (its import pulls in
    torch._dynamo and sympy: ~1.7 s of CPU in every kernel that trains an SRGAN)."""
    import subprocess
    import sys

    code = ("import sys, torch; import sr_utils.vgg as v; "
            "v.TruncatedVGG19(2, 2, weights=None); print(sorted(m for m in sys.modules if m.startswith('torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout


def test_vgg19_features_are_torchvisions_layer_for_layer(reference_features):
    with torch.device("meta"):
        ours = vgg_mod.vgg19_features()
    assert repr(ours) == repr(reference_features)  # kinds, sizes, padding, in-place ReLUs, pooling, indices
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in reference_features.state_dict().items()}


def test_imagenet_style_weights_give_torchvisions_outputs(weights_file):
    path, state = weights_file
    ref = torchvision.models.vgg19(weights=None).features[:9]
    ref.load_state_dict({k[len("features."):]: v for k, v in state.items()
                         if k.startswith("features.") and int(k.split(".")[1]) < 9})
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(TruncatedVGG19(2, 2, weights=path)(x), ref.eval()(x))
