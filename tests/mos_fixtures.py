"""Helpers shared by the MOS and class-results tests: a synthetic class (good and hostile submissions) and a study
folder (headless Chromium for the browser tests is in course_fixtures.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
#: What each synthetic student is, and the words their reason must contain (None: collected).
EXPECTED = {
    "alice": None, "bob": None, "carol": None,
    "dave": "expected",            # one image 4 px too narrow
    "erin": "missing",             # one image missing
    "frank": "bicubic",            # byte-identical to bicubic
    "gina": "identical to the image of hank", "hank": "identical to the image of gina",
    "ivan": "symbolic link",       # one image is a symlink to alice's
    "judy": "not a decodable PNG",  # a JPEG named .png
    "oscar": "identical to the HR original",   # hands in the originals
    "peggy": "not consistent with its LR image",  # another photo, scaled to the right size
    "mallory": "symbolic link",    # the whole student folder is a link
}


def save(img: np.ndarray, path: Path, fmt: str = "PNG") -> None:
    """``img`` (uint8) as ``fmt`` at ``path``; PNGs at zlib level 1 (lossless at any level; ~4x faster to write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format=fmt, **({"compress_level": 1} if fmt == "PNG" else {}))


def student_image(ref, name: str, k: int) -> np.ndarray:
    """A plausible SR image, different for each ``k``: the bicubic upscale shifted by ``k`` levels."""
    from course.mos.collect import bicubic

    return np.clip(bicubic(ref.lr[name], ref.scale).astype(np.int16) + k, 0, 255).astype(np.uint8)


def make_class(ref, root: Path, layout: str | None = None) -> dict[str, Path]:
    """The synthetic class of ``EXPECTED`` under ``root`` (default layout ``superres/submission/<ref.folder>``:
    ``samples`` for the bundled photos); returns each student's image folder."""
    from course.mos.collect import bicubic

    folders = {}
    for k, student in enumerate(s for s in EXPECTED if s != "mallory"):
        folder = root / student / (layout or f"superres/submission/{ref.folder}")
        folders[student] = folder
        for name in ref.names:
            img = student_image(ref, name, 3 + k)
            if student in ("gina", "hank"):
                img = student_image(ref, name, 2)  # plausible (consistent with the LR image), and the same
            if student == "frank":
                img = bicubic(ref.lr[name], ref.scale)
            save(img, folder / f"{name}.png")
    first = ref.names[0]
    save(student_image(ref, first, 9)[:, :-4], folders["dave"] / f"{first}.png")
    (folders["erin"] / f"{ref.names[-1]}.png").unlink()
    (folders["ivan"] / f"{first}.png").unlink()
    (folders["ivan"] / f"{first}.png").symlink_to(folders["alice"] / f"{first}.png")
    save(student_image(ref, first, 11), folders["judy"] / f"{first}.png", fmt="JPEG")
    for name in ref.names:
        save(ref.hr[name], folders["oscar"] / f"{name}.png")
    other = ref.names[1]
    h, w = ref.hr[first].shape[:2]
    save(np.asarray(Image.fromarray(ref.hr[other]).resize((w, h))), folders["peggy"] / f"{first}.png")
    (root / "mallory").symlink_to(root / "alice", target_is_directory=True)
    return folders


@pytest.fixture(scope="session")
def sample_ref(tmp_path_factory):
    """The bundled samples' test split (prepared once per session in a private data folder)."""
    from course.mos.collect import reference_set
    from course_fixtures import sample_data

    return reference_set(sample_data(tmp_path_factory.mktemp("mos-data")))


def make_study(ref, folder: Path, students=("alice", "bob"), raters=("instructor", "ta"), peer: bool = True,
               n_calibration: int = 1, seed: int = 0):
    """A small frozen study: ``students`` with distinct plausible images, the controls, one calibration pair."""
    from course.mos.study import calibration_pairs, freeze

    accepted = {s: {n: student_image(ref, n, 5 + 7 * k) for n in ref.names} for k, s in enumerate(students)}
    calib = calibration_pairs(ref.list_file.parent.parent, n=n_calibration, size=64) if n_calibration else []
    return freeze(folder, ref, accepted, list(raters), peer=peer, calibration=calib, seed=seed)
