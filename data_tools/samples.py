"""Real photos that ship inside installed wheels (scikit-image, matplotlib): the kit's offline default data.

No network is needed: the files are read from the packages' own folders.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .i18n import tr

__all__ = ["SAMPLE_TEST", "SAMPLE_VAL", "SAMPLE_TRAIN", "sample_photo_path", "load_sample_photo", "build_samples",
           "ensure_sample_data"]

# name -> (package, file inside the package's sample-data folder)
_PHOTOS = {
    "astronaut": ("skimage", "astronaut.png"),
    "chelsea": ("skimage", "chelsea.png"),
    "coffee": ("skimage", "coffee.png"),
    "rocket": ("skimage", "rocket.jpg"),
    "grace_hopper": ("matplotlib", "grace_hopper.jpg"),
    "hubble_deep_field": ("skimage", "hubble_deep_field.jpg"),
    "retina": ("skimage", "retina.jpg"),
    "ihc": ("skimage", "ihc.png"),
    "motorcycle_left": ("skimage", "motorcycle_left.png"),
    "motorcycle_right": ("skimage", "motorcycle_right.png"),
    "camera": ("skimage", "camera.png"),
    "brick": ("skimage", "brick.png"),
    "grass": ("skimage", "grass.png"),
    "gravel": ("skimage", "gravel.png"),
    "coins": ("skimage", "coins.png"),
    "moon": ("skimage", "moon.png"),
    "page": ("skimage", "page.png"),
}

#: The 5-image test split of the bundled data (natural photos, as Set5).
SAMPLE_TEST = ("astronaut", "chelsea", "coffee", "rocket", "grace_hopper")
#: The validation split (chooses ``best.pth``; never reported as a test result): held out of training.
SAMPLE_VAL = ("coins", "ihc")
#: The training split: every other bundled photo.
SAMPLE_TRAIN = tuple(n for n in _PHOTOS if n not in SAMPLE_TEST + SAMPLE_VAL)


def sample_photo_path(name: str) -> Path:
    """Path of a bundled photo inside its installed package."""
    if name not in _PHOTOS:
        raise KeyError(tr("unknown sample photo {name!r}; available: {known}", name=name, known=", ".join(_PHOTOS)))
    package, filename = _PHOTOS[name]
    if package == "skimage":
        import skimage.data

        folder = Path(skimage.data.__file__).parent
    else:
        import matplotlib

        folder = Path(matplotlib.get_data_path()) / "sample_data"
    path = folder / filename
    if not path.is_file():
        raise FileNotFoundError(tr("sample photo {name!r} is not in this {package} install ({path}); reinstall "
                                   "{package} or use another photo", name=name, package=package, path=path))
    return path


def load_sample_photo(name: str) -> np.ndarray:
    """A bundled photo as ``(H, W, 3)`` uint8 RGB (grey photos replicated to 3 channels)."""
    from sr_utils.color import load_rgb

    return load_rgb(sample_photo_path(name))


# ---------------------------------------------------------------------------------------------------------
# `samples` command: the bundled dataset in the EDSR layout
# ---------------------------------------------------------------------------------------------------------
def build_samples(data_dir: Path, scales=(4,), edge: str = "symmetric", progress: bool = True) -> Path:
    """Write the bundled dataset under ``<data_dir>/samples`` in the EDSR benchmark layout::

        samples/train/HR/<name>.png     samples/train/LR_bicubic/X4/<name>x4.png
        samples/val/HR/<name>.png       samples/val/LR_bicubic/X4/<name>x4.png
        samples/test/HR/<name>.png      samples/test/LR_bicubic/X4/<name>x4.png

    HR is cropped top-left to a multiple of every scale; LR is ``imresize(HR, 1/scale, edge=edge)``
    (MATLAB-exact). Files are written atomically and existing identical files are kept. Returns the folder.
    """
    from tqdm.auto import tqdm

    from sr_utils.files import write_png
    from sr_utils.imresize import imresize, modcrop

    root = Path(data_dir) / "samples"
    mod = int(np.lcm.reduce(list(scales)))
    jobs = [("test", n) for n in SAMPLE_TEST] + [("val", n) for n in SAMPLE_VAL] + [("train", n) for n in SAMPLE_TRAIN]
    for split, name in tqdm(jobs, desc=tr("samples"), unit="photo", disable=not progress):
        hr = modcrop(load_sample_photo(name), mod)
        write_png(root / split / "HR" / f"{name}.png", hr)
        for s in scales:
            write_png(root / split / "LR_bicubic" / f"X{s}" / f"{name}x{s}.png", imresize(hr, 1 / s, edge=edge))
    return root


def ensure_sample_data(data_dir=None, scale: int = 4, progress: bool = True) -> Path:
    """Make sure the bundled sample dataset is built and prepared (offline, a few seconds the first time) in
    ``data_dir`` (default: :func:`sr_utils.lists.default_data_dir`). Returns the data folder."""
    from sr_utils.lists import default_data_dir, list_path

    from .prepare import prepare

    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if not all(list_path(data_dir, f"samples_{s}", scale).is_file() for s in ("train", "val", "test")):
        build_samples(data_dir, scales=(scale,), progress=progress)
        result = prepare(data_dir, scale=scale, progress=progress)
        if result["errors"]:
            raise RuntimeError(tr("preparing the sample data failed:") + "\n" + "\n".join(result["errors"]))
    return data_dir


def add_arguments(parser) -> None:
    parser.add_argument("--scales", type=int, nargs="+", default=[4], help="LR scales to make (default: 4)")
    parser.add_argument("--edge", choices=["symmetric", "replicate"], default="symmetric",
                        help="MATLAB edge rule for the LR (default symmetric, as the DIV2K pack)")


def run(args) -> int:
    import time

    t = time.perf_counter()
    root = build_samples(args.data_dir, scales=args.scales, edge=args.edge)
    n_train, n_val, n_test = len(SAMPLE_TRAIN), len(SAMPLE_VAL), len(SAMPLE_TEST)
    print(f"bundled dataset: {n_train} train + {n_val} validation + {n_test} test photos in {root} "
          f"({time.perf_counter() - t:.1f} s); "
          f"next: python -m data_tools prepare --data-dir {args.data_dir}")
    return 0
