"""LPIPS (Zhang et al. 2018), a learned perceptual distance, as an optional validation and test metric.

Lower is better (0 = identical). Unlike PSNR/SSIM it rewards plausible texture, so it shows SRGAN's gain over
SRResNet that PSNR hides. It comes from the ``lpips`` package (``pip install lpips``; the kit's ``metrics`` extra),
which ships its small linear layers (``lpips/weights/v0.1/alex.pth``) but builds on an ImageNet backbone
(torchvision's AlexNet) that torchvision would download. The kit never downloads under grading or anywhere else:
the backbone's weights are taken, in order, from

1. the file named by ``$SR_LPIPS_BACKBONE`` (:data:`BACKBONE_ENV`);
2. the torch hub cache, ``<torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth`` — where
   ``torchvision.models.alexnet(weights="IMAGENET1K_V1")`` saves it on a machine with internet;

and :class:`LPIPSMetric` raises ``FileNotFoundError`` naming both places and the URL when neither exists.

Convention of :meth:`LPIPSMetric.distance`: SR and HR ``(H, W, 3)`` uint8 RGB, ``shave`` pixels cut from each border
(as PSNR/SSIM), mapped to [-1, 1] RGB (what LPIPS expects), AlexNet variant ``v0.1``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .i18n import tr

__all__ = ["BACKBONE_ENV", "BACKBONE_FILENAME", "BACKBONE_URL", "lpips_installed", "find_lpips_backbone",
           "LPIPSMetric"]

BACKBONE_ENV = "SR_LPIPS_BACKBONE"
BACKBONE_FILENAME = "alexnet-owt-7be5be79.pth"
BACKBONE_URL = f"https://download.pytorch.org/models/{BACKBONE_FILENAME}"


def lpips_installed() -> bool:
    """True when the ``lpips`` package can be imported."""
    try:
        import lpips  # noqa: F401
    except ImportError:
        return False
    return True


def _candidates() -> list[tuple[str, Path]]:
    out = []
    if os.environ.get(BACKBONE_ENV):
        out.append((f"${BACKBONE_ENV}", Path(os.environ[BACKBONE_ENV])))
    out.append((tr("torch hub cache"), Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILENAME))
    return out


def find_lpips_backbone() -> Path | None:
    """The first existing AlexNet weights file (``$SR_LPIPS_BACKBONE``, then the torch hub cache), or None.
    Never downloads."""
    return next((path for _, path in _candidates() if path.is_file()), None)


def _missing_message() -> str:
    places = "; ".join(f"{what}: {path}" for what, path in _candidates())
    hub = _candidates()[-1][1]
    params = dict(file=BACKBONE_FILENAME, places=places, env=BACKBONE_ENV, url=BACKBONE_URL, hub=hub)
    if os.environ.get(BACKBONE_ENV):
        return tr("LPIPS needs torchvision's ImageNet AlexNet weights ({file}, 233 MB), which are not on this machine "
                  "(looked at {places}; ${env} set). Nothing is downloaded automatically: download {url} and put it "
                  "at {hub}, or anywhere and set {env}=/path/to/{file}. PSNR/SSIM do not need it.", **params)
    return tr("LPIPS needs torchvision's ImageNet AlexNet weights ({file}, 233 MB), which are not on this machine "
              "(looked at {places}; ${env} not set). Nothing is downloaded automatically: download {url} and put it "
              "at {hub}, or anywhere and set {env}=/path/to/{file}. PSNR/SSIM do not need it.", **params)


class LPIPSMetric:
    """LPIPS (AlexNet, v0.1) with the package's shipped linear layers and a local backbone file.

    ``backbone``: the AlexNet weights file (default :func:`find_lpips_backbone`); raises ``ImportError`` when the
    ``lpips`` package is missing and ``FileNotFoundError`` (saying where to put the file) when the weights are.
    """

    def __init__(self, backbone=None, device="cpu"):
        try:
            import lpips
        except ImportError:
            raise ImportError(tr("LPIPS needs the lpips package: pip install lpips (or the kit's `metrics` extra, "
                                 "pip install -e '.[metrics]')")) from None
        path = Path(backbone) if backbone is not None else find_lpips_backbone()
        if path is None or not path.is_file():
            raise FileNotFoundError(_missing_message() if backbone is None
                                    else tr("LPIPS backbone {path} does not exist", path=path))
        state = torch.load(path, map_location="cpu", weights_only=True)
        features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        if not features:
            raise ValueError(tr("{path} is not a torchvision AlexNet state_dict (no 'features.*' entries)", path=path))
        # pnet_rand: build the backbone without torchvision's download, then load the local file into it
        import warnings

        with warnings.catch_warnings():  # lpips 0.1.4 calls torchvision's deprecated `pretrained=` argument
            warnings.simplefilter("ignore", UserWarning)
            self.model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        for slice_ in self.model.net.children():
            for index, layer in slice_.named_children():
                own = {k.split(".", 1)[1]: v for k, v in features.items() if k.split(".", 1)[0] == index}
                if own:
                    layer.load_state_dict(own)
        self.device = torch.device(device)
        self.model.to(self.device).eval().requires_grad_(False)
        self.backbone = path

    @torch.no_grad()
    def distance(self, sr: np.ndarray, hr: np.ndarray, shave: int = 4) -> float:
        """LPIPS between ``sr`` and ``hr``: ``(H, W, 3)`` uint8 RGB of the same size; ``shave`` border pixels cut."""
        if sr.shape != hr.shape or sr.ndim != 3 or sr.shape[2] != 3 or sr.dtype != np.uint8 or hr.dtype != np.uint8:
            raise ValueError(tr("LPIPS: sr and hr must be (H, W, 3) uint8 RGB of one size, got {sr} {sr_dtype} and "
                                "{hr} {hr_dtype}", sr=sr.shape, sr_dtype=sr.dtype, hr=hr.shape, hr_dtype=hr.dtype))
        if shave:
            sr, hr = sr[shave:-shave, shave:-shave], hr[shave:-shave, shave:-shave]

        def tensor(img):
            return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(
                self.device)

        return float(self.model(tensor(sr), tensor(hr)).item())
