"""Real photos that ship inside installed wheels (scikit-image, matplotlib): the kit's offline default data.

No network is needed: the files are read from the packages' own folders.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_TEST", "SAMPLE_TRAIN", "sample_photo_path", "load_sample_photo"]

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
#: The training split: every other bundled photo.
SAMPLE_TRAIN = tuple(n for n in _PHOTOS if n not in SAMPLE_TEST)


def sample_photo_path(name: str) -> Path:
    """Path of a bundled photo inside its installed package."""
    if name not in _PHOTOS:
        raise KeyError(f"unknown sample photo {name!r}; available: {', '.join(_PHOTOS)}")
    package, filename = _PHOTOS[name]
    if package == "skimage":
        import skimage.data

        folder = Path(skimage.data.__file__).parent
    else:
        import matplotlib

        folder = Path(matplotlib.get_data_path()) / "sample_data"
    path = folder / filename
    if not path.is_file():
        raise FileNotFoundError(f"sample photo {name!r} is not in this {package} install ({path}); "
                                f"reinstall {package} or use another photo")
    return path


def load_sample_photo(name: str) -> np.ndarray:
    """A bundled photo as ``(H, W, 3)`` uint8 RGB (grey photos replicated to 3 channels)."""
    from sr_utils.color import load_rgb

    return load_rgb(sample_photo_path(name))
