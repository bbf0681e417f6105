"""Collect the students' super-resolved images for the human evaluation, checking each one (student files are hostile).

A student's images are ``<root>/<student>/<assignment>/submission/<set folder>/<name>.png`` (what notebook 05 writes,
``course/submitted/`` by default) or ``<root>/<student>/submission/<set folder>/<name>.png`` (``--from DIR``).

Every file is read by :mod:`course.student_files` (opened relative to its folder's descriptor without following a
link, checked with ``fstat`` before it is opened for reading: a regular file, at most ``MAX_FILE_BYTES``), decoded by PIL from the bytes read (PNG only, ``Image.MAX_IMAGE_PIXELS`` bounded, the header's
size checked before decoding), and must be RGB, exactly ``scale`` times its LR image, not pixel-identical to the
bicubic upscale, not implausibly close to the HR original nor inconsistent with its LR image
(:mod:`course.mos.plausibility`) and not pixel-identical to another student's image. A student who fails any check is
left out with a reason naming the file; nothing aborts for the class.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from course.student_id import STUDENT_ID

__all__ = ["ReferenceSet", "Collected", "reference_set", "find_student_folders", "read_images", "check_images",
           "collect", "read_plain_file", "decode_png", "bicubic", "MAX_FILE_BYTES"]

#: Largest image file accepted (a 4x Set5 PNG is about 1.5 MB).
MAX_FILE_BYTES = 32 << 20
#: Largest image accepted when decoding (pixels): far above 4x Set5 (512 x 512), far below a decompression bomb.
MAX_PIXELS = 16 << 20


@dataclass
class ReferenceSet:
    """The evaluation images: ``label`` says which split they are (printed in every output)."""

    label: str
    list_file: Path
    scale: int
    names: list[str]
    lr: dict[str, np.ndarray]  # (h, w, 3) uint8 RGB
    hr: dict[str, np.ndarray]  # (h * scale, w * scale, 3) uint8 RGB
    is_set5: bool = True
    folder: str = "set5"  # where students' images are: submission/<folder>/ (sr_utils.lists.submission_folder)


@dataclass
class Collected:
    """Accepted students' images (``name -> (H, W, 3) uint8``) and the rejected ones' reasons."""

    accepted: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def reference_set(data_dir=None, scale: int = 4) -> ReferenceSet:
    """The Set5 list of the prepared data folder when present; else the bundled samples' test split (built on first
    use), labelled as such — never called Set5."""
    from data_tools.samples import ensure_sample_data
    from sr_utils.datasets import SREvalDataset
    from sr_utils.lists import default_data_dir, human_eval_list, submission_folder

    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        split, list_file = human_eval_list(data_dir, scale)
    except FileNotFoundError:  # nothing prepared yet: the bundled photos, built once
        split, list_file = human_eval_list(ensure_sample_data(data_dir, scale, progress=False), scale)
    is_set5 = split == "Set5"
    label = "Set5" if is_set5 else f"bundled sample photos, test split (Set5 is not prepared in {data_dir})"
    ds = SREvalDataset(list_file)
    lr, hr = {}, {}
    for i in range(len(ds)):
        name, lo, hi = ds[i]
        lr[name], hr[name] = lo, hi
    return ReferenceSet(label, list_file, ds.scale, list(lr), lr, hr, is_set5, submission_folder(split))


def _is_plain_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def find_student_folders(root: Path, assignment: str = "superres",
                         set_folder: str = "set5") -> tuple[dict[str, Path], dict[str, str]]:
    """``({student: image folder}, {name: reason})`` of every folder directly under ``root``. No symbolic link is
    followed, at any level."""
    found, rejected = {}, {}
    root = Path(root)
    if not _is_plain_dir(root):
        raise FileNotFoundError(f"{root} is not a folder of student submissions")
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            rejected[entry.name] = f"{entry.name} is a symbolic link (submissions must be plain folders)"
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        if not STUDENT_ID.match(entry.name):
            rejected[entry.name] = f"{entry.name!r} is not a usable student id (letters, digits, _.@-)"
            continue
        here = root / entry.name
        for rel in ((assignment, "submission", set_folder), ("submission", set_folder)):
            parts = [here]
            for part in rel:
                parts.append(parts[-1] / part)
            if all(_is_plain_dir(p) for p in parts[1:]):
                found[entry.name] = parts[-1]
                break
            if any(p.is_symlink() for p in parts[1:]):
                rejected[entry.name] = f"{'/'.join(rel)} contains a symbolic link"
                break
        else:
            rejected[entry.name] = (f"no submission/{set_folder}/ folder (looked in {assignment}/submission/"
                                    f"{set_folder}/ and submission/{set_folder}/)")
    return found, rejected


def read_plain_file(path, dir_fd: int | None = None) -> bytes:
    """The bytes of a regular file, refusing links (``OSError`` ELOOP), FIFOs, devices and files over
    ``MAX_FILE_BYTES`` (``ValueError``). ``path`` is a name relative to ``dir_fd`` when given (any depth, no ``..``),
    else a path whose folder is opened without following a link; either way it is read by
    :func:`course.student_files.read_beneath` (a walk of directory descriptors, no link followed)."""
    from course.student_files import read_beneath

    if dir_fd is None:
        path = Path(path)
        return read_beneath(path.parent, path.name, MAX_FILE_BYTES)
    return read_beneath(dir_fd, path, MAX_FILE_BYTES)


def decode_png(data: bytes, expected_wh: tuple[int, int]) -> np.ndarray:
    """``(H, W, 3)`` uint8 pixels of PNG ``data`` that must be RGB and ``expected_wh`` = (width, height).
    Raises ``ValueError`` saying what is wrong."""
    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over MAX_PIXELS: refuse, not warn
            im = Image.open(io.BytesIO(data), formats=["PNG"])
        with im:
            if im.size != expected_wh:
                raise ValueError(f"is {im.size[0]}x{im.size[1]}, expected {expected_wh[0]}x{expected_wh[1]} "
                                 "(4x its LR image)")
            if im.mode != "RGB":
                raise ValueError(f"is a {im.mode} image, expected RGB")
            im.load()
            return np.asarray(im, dtype=np.uint8).copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"has more than {MAX_PIXELS} pixels (refused before decoding)") from None
    except Image.UnidentifiedImageError:
        raise ValueError("is not a decodable PNG") from None
    except (OSError, SyntaxError) as e:
        raise ValueError(f"cannot be decoded ({e})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _digest(img: np.ndarray) -> str:
    return hashlib.sha256(img.tobytes() + repr(img.shape).encode()).hexdigest()


def read_images(folder: Path, ref: ReferenceSet) -> dict[str, np.ndarray]:
    """The student's images ``{name: pixels}`` in ``folder``, one per reference image, each read safely and checked
    (PNG, RGB, ``scale`` x its LR image); raises ``ValueError`` with the first problem (naming the file)."""
    from course.student_files import open_folder

    try:  # the folder itself is opened without following a link; every file is opened relative to it
        dfd = open_folder(folder)
    except OSError as e:
        raise ValueError(f"{folder.name}/ cannot be opened as a plain folder ({e.strerror})") from None
    images = {}
    try:
        for name in ref.names:
            h, w = ref.lr[name].shape[:2]
            try:
                images[name] = decode_png(read_plain_file(f"{name}.png", dfd), (w * ref.scale, h * ref.scale))
            except FileNotFoundError:
                raise ValueError(f"{name}.png is missing (one image per {ref.label} image is expected)") from None
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise ValueError(f"{name}.png is a symbolic link") from None
                raise ValueError(f"{name}.png cannot be read ({e.strerror or e})") from None
            except ValueError as e:
                raise ValueError(f"{name}.png {e}") from None
    finally:
        os.close(dfd)
    return images


def check_images(folder: Path, ref: ReferenceSet, bicubic_digests: dict[str, str],
                 bicubic_images: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """:func:`read_images`, and none may be pixel-identical to the bicubic upscale of its LR image; with
    ``bicubic_images`` none may be implausibly close to the HR original or inconsistent with its LR image
    (:mod:`course.mos.plausibility`)."""
    from course.mos.plausibility import implausible

    images = read_images(folder, ref)
    for name, img in images.items():
        if _digest(img) == bicubic_digests[name]:
            raise ValueError(f"{name}.png is identical to the bicubic upscale of the LR image")
    for name, img in images.items() if bicubic_images is not None else ():
        why = implausible(img, ref.lr[name], ref.hr[name], bicubic_images[name], ref.scale)
        if why:
            raise ValueError(f"{name}.png {why}")
    return images


def bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    """The MATLAB-bicubic upscale of a uint8 LR image (the kit's ``imresize``)."""
    from sr_utils.imresize import imresize

    return imresize(lr, scale)


def collect(root: Path, ref: ReferenceSet, assignment: str = "superres", log=print) -> Collected:
    """Check every student under ``root`` (see the module doc); reasons for the rejected, pixels of the others."""
    bicubic_images = {n: bicubic(ref.lr[n], ref.scale) for n in ref.names}
    bicubic_digests = {n: _digest(img) for n, img in bicubic_images.items()}
    folders, rejected = find_student_folders(Path(root), assignment, ref.folder)
    out = Collected(rejected=dict(rejected))
    for student, folder in folders.items():
        try:
            out.accepted[student] = check_images(folder, ref, bicubic_digests, bicubic_images)
        except ValueError as e:
            out.rejected[student] = str(e)
    # pixel-identical images between students: every student involved is left out (who copied is for a human)
    owners: dict[tuple[str, str], list[str]] = {}
    for student, images in out.accepted.items():
        for name, img in images.items():
            owners.setdefault((name, _digest(img)), []).append(student)
    for (name, _), students in sorted(owners.items()):
        if len(students) > 1:
            for s in students:
                others = ", ".join(o for o in students if o != s)
                out.rejected.setdefault(s, f"{name}.png is identical to the image of {others}")
    for s in out.rejected:
        out.accepted.pop(s, None)
    for s, reason in sorted(out.rejected.items()):
        log(f"  left out {s}: {reason}")
    log(f"  {len(out.accepted)} submissions collected, {len(out.rejected)} left out ({ref.label})")
    return out
