"""Truncated VGG19 feature extractor for the SRGAN content loss (Ledig et al. 2017, φ(i, j)).

``TruncatedVGG19(i, j)`` is torchvision's ``vgg19().features`` cut right after the ReLU that follows the
``j``-th convolution before the ``i``-th max-pooling layer, i.e. the paper's φ(i, j). The paper's VGG54 (the
SRGAN content loss) is ``i=5, j=4`` = ``features[:36]``, 20,024,384 parameters; VGG22 is ``i=2, j=2`` =
``features[:9]``. The network is frozen (no parameter requires grad) and always in eval mode; gradients still
flow through it to its input, which is what a perceptual loss needs.

Input convention (the caller converts; nothing is normalised inside ``forward``):

* dtype: float (float32 with the default weights; the module's dtype otherwise);
* layout: ``(N, 3, H, W)``, channel order RGB;
* value range: ImageNet-normalised, ``(x01 - mean) / std`` per channel with ``x01`` an image in [0, 1],
  mean ``(0.485, 0.456, 0.406)``, std ``(0.229, 0.224, 0.225)`` (:data:`sr_utils.color.IMAGENET_MEAN` /
  :data:`sr_utils.color.IMAGENET_STD`). From an SRResNet output (tanh, [-1, 1]) use
  ``sr_utils.color.convert_image(sr, "[-1, 1]", "imagenet-norm")``; from an image in [0, 1] use
  ``convert_image(x, "[0, 1]", "imagenet-norm")``.

Output: float feature map ``(N, C, H // 2**(i-1), W // 2**(i-1))`` after a ReLU (so >= 0), ``C`` = 64, 128, 256,
512, 512 for ``i`` = 1..5. For a 96x96 HR patch, VGG54 gives ``(N, 512, 6, 6)``.

Weights. ``weights="imagenet"`` (the default) uses torchvision's ImageNet file ``vgg19-dcbb9e9d.pth``
(:data:`VGG19_WEIGHTS_FILENAME`, from :data:`VGG19_WEIGHTS_URL`), looked up, in order, at

1. the file named by the environment variable ``SR_VGG19_WEIGHTS`` (:data:`VGG19_WEIGHTS_ENV`);
2. the torch hub cache, ``os.path.join(torch.hub.get_dir(), "checkpoints", "vgg19-dcbb9e9d.pth")`` — where
   ``torchvision.models.vgg19(weights="IMAGENET1K_V1")`` stores it on a machine with internet.

Nothing is ever downloaded: when no file is found a ``FileNotFoundError`` lists every place looked at and how to
get the file. :func:`find_vgg19_weights` tells, without raising, whether a VGG content loss is possible.
``weights=None`` gives torchvision's random initialisation (tests); a path gives that file. Only the
``features.*`` keys the truncated network needs are read from the file (strictly: all must be there, with the
right shapes).

No tensor is built at import time, and torchvision is never imported: :func:`vgg19_features` builds the same
layers at the same indices (importing torchvision costs ~1.7 s of CPU per process, about as much as torch itself,
which every notebook kernel and training process would pay).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .i18n import tr

__all__ = [
    "TruncatedVGG19", "vgg19_features", "find_vgg19_weights", "vgg19_weights_candidates",
    "VGG19_WEIGHTS_FILENAME", "VGG19_WEIGHTS_URL", "VGG19_WEIGHTS_ENV",
]

#: File name of torchvision's ImageNet VGG19 weights (``VGG19_Weights.IMAGENET1K_V1``).
VGG19_WEIGHTS_FILENAME = "vgg19-dcbb9e9d.pth"
#: Where torchvision downloads that file from.
VGG19_WEIGHTS_URL = "https://download.pytorch.org/models/" + VGG19_WEIGHTS_FILENAME
#: Environment variable naming the weights file explicitly (looked at first).
VGG19_WEIGHTS_ENV = "SR_VGG19_WEIGHTS"

# Number of convolutions in each of VGG19's five blocks (torchvision's configuration "E"), and their widths.
_VGG19_CONVS_PER_BLOCK = (2, 2, 4, 4, 4)
_VGG19_WIDTHS = (64, 128, 256, 512, 512)


def vgg19_features() -> nn.Sequential:
    """The layers of torchvision's ``vgg19().features``, at its indices (so its state dict keys and the ImageNet
    file's ``features.<k>.*`` entries match): per block, 3x3 convolutions (padding 1) each followed by an
    in-place ReLU, then a 2x2 max-pooling of stride 2. Built on the current default device, not initialised
    (PyTorch's default init); :class:`TruncatedVGG19` initialises or loads what it keeps."""
    layers: list[nn.Module] = []
    channels = 3
    for n_conv, width in zip(_VGG19_CONVS_PER_BLOCK, _VGG19_WIDTHS):
        for _ in range(n_conv):
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg19_weights_candidates() -> list[tuple[str, Path]]:
    """Every place :func:`find_vgg19_weights` looks at, in order, as ``(description, path)`` pairs.

    The environment variable is listed only when it is set (and non-empty); ``~`` in it is expanded.
    The hub location is computed at call time from ``torch.hub.get_dir()`` (which honours ``TORCH_HOME``).
    """
    candidates: list[tuple[str, Path]] = []
    env = os.environ.get(VGG19_WEIGHTS_ENV, "").strip()
    if env:
        candidates.append((f"${VGG19_WEIGHTS_ENV}", Path(env).expanduser()))
    hub = Path(os.path.join(torch.hub.get_dir(), "checkpoints", VGG19_WEIGHTS_FILENAME))
    candidates.append((tr("torch hub cache"), hub))
    return candidates


def find_vgg19_weights() -> Path | None:
    """Path of the first existing ImageNet VGG19 weights file, or ``None`` when there is none.

    Looks at ``$SR_VGG19_WEIGHTS`` and then at ``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``.
    Never downloads; cheap (two ``stat`` calls), so it can decide whether a VGG content loss is possible.
    """
    for _, path in vgg19_weights_candidates():
        if path.is_file():
            return path
    return None


def _missing_weights_message() -> str:
    names = dict(file=VGG19_WEIGHTS_FILENAME, env=VGG19_WEIGHTS_ENV)
    lines = [tr("ImageNet VGG19 weights ({file}) not found. Looked at, in order:", **names)]
    env_listed = False
    for what, path in vgg19_weights_candidates():
        env_listed |= what.startswith("$")
        state = tr("not a file") if path.exists() else tr("does not exist")
        lines.append(f"  - {what}: {path} ({state})")
    if not env_listed:
        lines.append(tr("  - ${env}: not set", **names))
    hub = vgg19_weights_candidates()[-1][1]
    lines += [
        tr("Nothing is downloaded automatically. To get the file, either:"),
        tr("  - download {url} (548 MB) and put it at {hub},", url=VGG19_WEIGHTS_URL, hub=hub),
        tr("    or anywhere and set {env}=/path/to/{file};", **names),
        tr("  - or, on a machine with internet, run "
           "python -c 'import torchvision; torchvision.models.vgg19(weights=\"IMAGENET1K_V1\")' "
           "which fills the torch hub cache (copy its checkpoints/ folder over if needed);"),
        tr("  - or pass weights='/path/to/file.pth' (or weights=None for random weights, tests only)."),
    ]
    return "\n".join(lines)


def _resolve_weights(weights) -> Path | None:
    """``None`` -> ``None``; ``"imagenet"`` -> the found file (or FileNotFoundError); a path -> that file."""
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        path = find_vgg19_weights()
        if path is None:
            raise FileNotFoundError(_missing_weights_message())
        return path
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(tr("VGG19 weights file {path} does not exist (weights={weights!r}); "
                                       "torchvision's ImageNet file is {url}", path=path, weights=weights,
                                       url=VGG19_WEIGHTS_URL))
        return path
    raise TypeError(tr("TruncatedVGG19: weights must be None, 'imagenet' or a path to {file}, got {type}",
                       file=VGG19_WEIGHTS_FILENAME, type=type(weights).__name__))


def _check_ij(i, j) -> None:
    for name, v in (("i", i), ("j", j)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(tr("TruncatedVGG19: {name} must be an int, got {value!r}", name=name, value=v))
    if not 1 <= i <= len(_VGG19_CONVS_PER_BLOCK):
        raise ValueError(tr("TruncatedVGG19: i (the max-pooling block) must be in 1..5, got i={i}", i=i))
    n_conv = _VGG19_CONVS_PER_BLOCK[i - 1]
    if not 1 <= j <= n_conv:
        raise ValueError(tr("TruncatedVGG19: j (the convolution inside block i) must be in 1..{n} for i={i} "
                            "(1..2 for blocks 1-2, 1..4 for blocks 3-5), got j={j}", n=n_conv, i=i, j=j))


def _cut_index(features: nn.Sequential, i: int, j: int) -> int:
    """Number of leading layers of ``features`` up to and including the ReLU after conv ``j`` of block ``i``."""
    block, conv_in_block, target = 1, 0, None
    for idx, layer in enumerate(features):
        if target is not None:
            if isinstance(layer, nn.ReLU):
                return idx + 1
            continue
        if isinstance(layer, nn.MaxPool2d):
            block, conv_in_block = block + 1, 0
        elif isinstance(layer, nn.Conv2d):
            conv_in_block += 1
            if block == i and conv_in_block == j:
                target = idx
    raise ValueError(f"TruncatedVGG19: VGG19 has no ReLU after convolution j={j} of block i={i}")


class TruncatedVGG19(nn.Module):
    """Frozen VGG19 feature extractor φ(i, j) of SRGAN, torchvision's ``vgg19().features`` truncated.

    Args:
        i (int): The max-pooling block, 1..5. Output is at 1 / 2**(i-1) of the input resolution. Default: 5.
        j (int): The convolution inside block ``i`` (1..2 for blocks 1-2, 1..4 for blocks 3-5) after whose ReLU
            the network is cut. Default: 4 (VGG54 = ``features[:36]``, 20,024,384 parameters).
        weights (None | str | os.PathLike): ``"imagenet"`` (default): torchvision's ImageNet weights from
            ``$SR_VGG19_WEIGHTS`` or the torch hub cache (``FileNotFoundError`` listing both, and how to get the
            file, when absent; never downloads). ``None``: torchvision's random initialisation (tests). A path:
            a ``torch.save``-d state dict with torchvision's ``features.<k>.weight/bias`` keys.

    Attributes:
        features (nn.Sequential): The truncated layers, with torchvision's indices (so ``state_dict`` keys are
            the torchvision ones, ``features.0.weight`` ...).
        weights_path (Path | None): The file the weights were loaded from (``None`` for random weights).

    The module is always in eval mode (``train(True)`` is ignored, also when called by a parent model) and no
    parameter requires grad; gradients still reach the input.

    Example:
        >>> vgg = TruncatedVGG19(5, 4)                                                  # doctest: +SKIP
        >>> feats = vgg(convert_image(sr, "[-1, 1]", "imagenet-norm"))                # doctest: +SKIP
    """

    def __init__(self, i: int = 5, j: int = 4, weights="imagenet"):
        super().__init__()
        _check_ij(i, j)
        path = _resolve_weights(weights)  # before building anything: a missing file fails fast
        with torch.device("meta"):  # (no memory or init time for the layers cut off)
            full = vgg19_features()
        cut = _cut_index(full, i, j)
        features = full[:cut].to_empty(device="cpu")
        if path is None:
            _init_like_torchvision(features)
        else:
            _load_features(features, path)
        self.features = features
        self.i, self.j = i, j
        self.weights_path = path
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "TruncatedVGG19":
        """Stay in eval mode whatever ``mode`` is (VGG19 has no dropout/BN in ``features``, but be explicit)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map φ(i, j) of an ImageNet-normalised RGB batch.

        Args:
            x (Tensor): Float tensor ``(N, 3, H, W)``, RGB, ImageNet-normalised: ``(x01 - mean) / std`` with
                ``x01`` in [0, 1], mean ``(0.485, 0.456, 0.406)``, std ``(0.229, 0.224, 0.225)``. Not normalised
                here: convert first, e.g. ``sr_utils.color.convert_image(sr, "[-1, 1]", "imagenet-norm")`` for
                an SRResNet output in [-1, 1]. Same dtype and device as the module.

        Returns:
            Tensor: Float ``(N, C, H // 2**(i-1), W // 2**(i-1))``, non-negative (after ReLU);
            ``C`` = 64, 128, 256, 512, 512 for ``i`` = 1..5.
        """
        if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise ValueError(tr("TruncatedVGG19: expected a float (N, 3, H, W) RGB ImageNet-normalised tensor, got "
                                "{dtype} {shape}", dtype=x.dtype, shape=tuple(x.shape)))
        return self.features(x)

    def extra_repr(self) -> str:
        src = "random" if self.weights_path is None else str(self.weights_path)
        return f"i={self.i}, j={self.j}, weights={src}"


def _init_like_torchvision(features: nn.Sequential) -> None:
    """torchvision ``VGG.__init__``'s initialisation of the convolutions (Kaiming normal, fan_out; zero bias)."""
    with torch.no_grad():
        for m in features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)


def _load_features(features: nn.Sequential, path: Path) -> None:
    """Load the ``features.<k>.*`` entries ``features`` needs from a torchvision VGG19 state dict file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(tr("{path}: expected a VGG19 state dict (a dict of tensors), got {type}", path=path,
                            type=type(state).__name__))
    needed = list(features.state_dict().keys())
    missing = [f"features.{k}" for k in needed if f"features.{k}" not in state]
    if missing:
        raise KeyError(tr("{path} is not a torchvision VGG19 state dict: missing {keys}{more} ({n} of {total} keys)",
                          path=path, keys=missing[:4], more=" ..." if len(missing) > 4 else "", n=len(missing),
                          total=len(needed)))
    sub = {k: state[f"features.{k}"] for k in needed}
    try:
        features.load_state_dict(sub, strict=True)
    except RuntimeError as e:
        raise ValueError(tr("{path}: the VGG19 features do not match torchvision's vgg19: {error}", path=path,
                            error=e)) from e
