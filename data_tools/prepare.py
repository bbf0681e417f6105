"""``prepare``: the course's ``create_data_lists.py``, done right.

1. Scan a data folder for the two usual layouts::

       <any>/<Set>/HR/<name>.png            + <any>/<Set>/LR_bicubic/X4/<name>x4.png      (EDSR benchmark packs)
       <any>/DIV2K_train_HR/0001.png        + <any>/DIV2K_train_LR_bicubic/X4/0001x4.png  (DIV2K)

2. Check every pair: the LR must be exactly HR/scale after a top-left modcrop of HR; the file at fault is named.
3. Make missing LR images with the MATLAB-exact ``imresize`` (edge rule an option, recorded with the lists).
4. Write one list per split and scale, ``<data>/lists/<split>_x<scale>.json``, with paths relative to ``<data>``.
5. Build a decoded cache for the training splits, ``<data>/cache/<split>_x<scale>/{hr,lr}.u8`` + ``index.json``:
   every image's uint8 pixels back to back in one file, memory-mapped by :class:`sr_utils.datasets.SRDataset`
   so that training never decodes a PNG per patch and never holds the dataset in RAM.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sr_utils.lists import cache_dir, list_path, read_list

from .i18n import tr

__all__ = ["Split", "find_splits", "check_split", "write_list", "build_cache", "prepare", "PairError"]

LIST_VERSION = 1
CACHE_VERSION = 1


class PairError(ValueError):
    """One or more LR/HR pairs are inconsistent; the message names every file at fault."""


@dataclass
class Split:
    """One set of HR images and where its LR images live (or should live) for a scale."""

    name: str
    hr_dir: Path
    lr_dir: Path  # the X<scale> folder
    lr_pattern: str = "{name}x{scale}.png"
    images: list[dict] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)


def _split_name(folder: Path, root: Path) -> str:
    if folder.name.lower() in {"train", "test", "valid", "val"}:
        return f"{folder.parent.name}_{folder.name}"
    return folder.name


def find_splits(data_dir: Path, scale: int = 4) -> list[Split]:
    """Every split under ``data_dir`` in the EDSR or DIV2K layout, sorted by name (lists, caches and downloads'
    scratch folders are ignored)."""
    data_dir = Path(data_dir)
    splits: dict[str, Split] = {}
    skip = {"lists", "cache", "downloads"}  # our own outputs and scratch
    for dirpath, dirnames, _ in os.walk(data_dir):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (here == data_dir and d in skip))
        m = re.fullmatch(r"DIV2K_(train|valid)_HR", here.name)
        if m:
            name = f"DIV2K_{m.group(1)}"
            lr_dir = here.parent / f"DIV2K_{m.group(1)}_LR_bicubic" / f"X{scale}"
            splits[name] = Split(name, here, lr_dir)
            dirnames[:] = []
        elif "HR" in dirnames:
            name = _split_name(here, data_dir)
            if name in splits:
                name = str(here.relative_to(data_dir)).replace(os.sep, "_")
            splits[name] = Split(name, here / "HR", here / "LR_bicubic" / f"X{scale}")
            dirnames[:] = []
    return [splits[k] for k in sorted(splits)]


def _image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except (UnidentifiedImageError, OSError) as e:
        raise PairError(tr("{path}: cannot read image header ({error})", path=path, error=e)) from e


def _load_hr_pixels(path: Path, load_rgb) -> np.ndarray:
    """HR pixels for making its LR: a grey ('L') file stays single-channel, so its LR is grey like MATLAB's
    (Set14/bridge); every other mode goes through ``load_rgb``'s explicit conversion to RGB."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode == "L":
                im.load()
                return np.asarray(im).copy()
    except OSError:
        pass  # load_rgb reports it with the file name
    return load_rgb(path)


def check_split(split: Split, data_dir: Path, scale: int, edge: str = "symmetric", generate: bool = True,
                progress: bool = True) -> Split:
    """Fill ``split.images`` after checking each pair; make missing LR files when ``generate``.

    Raises :class:`PairError` naming every wrong file (all of them, not just the first).
    """
    from tqdm.auto import tqdm

    from sr_utils.color import load_rgb
    from sr_utils.files import write_png
    from sr_utils.imresize import imresize, modcrop

    hr_files = sorted(p for p in split.hr_dir.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
    if not hr_files:
        raise PairError(tr("{folder}: no PNG images found (is the folder empty or still downloading?)",
                           folder=split.hr_dir))
    errors = []
    for hr_path in tqdm(hr_files, desc=tr("check {split} x{scale}", split=split.name, scale=scale), unit="img",
                        disable=not progress, leave=False):
        name = hr_path.stem
        lr_path = split.lr_dir / split.lr_pattern.format(name=name, scale=scale)
        try:
            h, w = _image_size(hr_path)
        except PairError as e:
            errors.append(str(e))
            continue
        if h < scale or w < scale:
            errors.append(tr("{path}: HR {w}x{h} is smaller than the scale {scale}", path=hr_path, w=w, h=h,
                             scale=scale))
            continue
        want = (h // scale, w // scale)
        if not lr_path.exists():
            if not generate:
                errors.append(tr("{path}: missing LR for {hr} (run without --no-generate to make it)", path=lr_path,
                                 hr=hr_path.name))
                continue
            try:
                hr = _load_hr_pixels(hr_path, load_rgb)
            except (ValueError, FileNotFoundError) as e:
                errors.append(str(e))
                continue
            write_png(lr_path, imresize(modcrop(hr, scale), 1 / scale, edge=edge))
            split.generated.append(name)
        else:
            try:
                got = _image_size(lr_path)
            except PairError as e:
                errors.append(str(e))
                continue
            if got != want:
                errors.append(tr("{path}: LR is {got_w}x{got_h}, expected {want_w}x{want_h} (HR {hr} {w}x{h} / "
                                 "{scale}, after a top-left modcrop); replace it, or delete it and let `prepare` "
                                 "regenerate it", path=lr_path, got_w=got[1], got_h=got[0], want_w=want[1],
                                 want_h=want[0], hr=hr_path.name, w=w, h=h, scale=scale))
                continue
        split.images.append({
            "name": name,
            "hr": hr_path.relative_to(data_dir).as_posix(),
            "lr": lr_path.relative_to(data_dir).as_posix(),
            "hr_size": [want[0] * scale, want[1] * scale],  # modcropped
            "lr_size": list(want),
        })
    if errors:
        raise PairError(tr("{split} x{scale}: {n} problem(s):", split=split.name, scale=scale, n=len(errors))
                        + "\n  " + "\n  ".join(errors))
    return split


def _atomic_json(path: Path, obj) -> None:
    from sr_utils.files import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def write_list(split: Split, data_dir: Path, scale: int, edge: str, out_dir: Path | None = None) -> Path:
    """Write ``<out_dir>/lists/<split>_x<scale>.json``; image paths are relative to ``data_dir``, and ``root``
    is ``data_dir`` relative to the list's folder, so the data and the lists can move together."""
    path = list_path(out_dir or data_dir, split.name, scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_json(path, {
        "version": LIST_VERSION,
        "split": split.name,
        "scale": scale,
        "root": Path(os.path.relpath(Path(data_dir).resolve(), path.parent.resolve())).as_posix(),
        "hr_modcrop": "top-left, to a multiple of the scale",
        "generated_lr": sorted(split.generated),
        "generated_lr_rule": f"MATLAB imresize bicubic 1/{scale}, edge={edge}" if split.generated else None,
        "images": split.images,
    })
    return path


def _source_stamp(data_dir: Path, images: list[dict]) -> list[list]:
    stamps = []
    for im in images:
        for key in ("hr", "lr"):
            st = (Path(data_dir) / im[key]).stat()
            stamps.append([im[key], st.st_size, st.st_mtime_ns])
    return stamps


def build_cache(out_dir: Path, split: str, scale: int, progress: bool = True) -> Path:
    """Decode a split's pairs once into ``cache/<split>_x<scale>/``: ``hr.u8`` and ``lr.u8`` hold every image's
    ``(H, W, 3)`` uint8 RGB pixels back to back (HR modcropped), ``index.json`` their offsets and shapes.

    Up to date caches (same version, same source files, sizes and mtimes) are kept. Written to a temporary
    folder and renamed into place: an interrupted build never leaves a half-written cache behind.
    """
    import shutil

    from tqdm.auto import tqdm

    from sr_utils.color import load_rgb
    from sr_utils.files import publish_permissions
    from sr_utils.imresize import modcrop

    meta, data_dir = read_list(list_path(out_dir, split, scale))
    images = meta["images"]
    out = cache_dir(out_dir, split, scale)
    stamp = _source_stamp(data_dir, images)
    index_file = out / "index.json"
    if index_file.exists():
        old = json.loads(index_file.read_text())
        if old.get("version") == CACHE_VERSION and old.get("sources") == stamp:
            return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        entries, offsets = [], {"hr": 0, "lr": 0}
        with open(tmp / "hr.u8", "wb") as fh, open(tmp / "lr.u8", "wb") as fl:
            for im in tqdm(images, desc=tr("cache {split} x{scale}", split=split, scale=scale), unit="img",
                           disable=not progress, leave=False):
                entry = {"name": im["name"]}
                for key, f in (("hr", fh), ("lr", fl)):
                    a = load_rgb(data_dir / im[key])
                    if key == "hr":
                        a = modcrop(a, scale)
                    a = np.ascontiguousarray(a)
                    f.write(a.tobytes())
                    entry[key] = {"offset": offsets[key], "shape": list(a.shape)}
                    offsets[key] += a.nbytes
                if entry["hr"]["shape"][:2] != [s * scale for s in entry["lr"]["shape"][:2]]:
                    raise PairError(tr("{path}: LR {lr} is not HR {hr} / {scale}", path=im["lr"],
                                       lr=entry["lr"]["shape"], hr=entry["hr"]["shape"], scale=scale))
                entries.append(entry)
        _atomic_json(tmp / "index.json", {"version": CACHE_VERSION, "split": split, "scale": scale,
                                          "images": entries, "sources": stamp})
        if out.exists():
            shutil.rmtree(out)
        publish_permissions(tmp, directory=True)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def prepare(data_dir: Path, scale: int = 4, edge: str = "symmetric", generate: bool = True,
            cache_splits: list[str] | None = None, progress: bool = True, out_dir: Path | None = None) -> dict:
    """Run steps 1-5 on ``data_dir``, writing lists and caches under ``out_dir`` (default ``data_dir``; use
    another folder when the data is read-only). ``cache_splits``: names of the splits to cache (default: the training
    splits, those whose name contains "train"). Returns ``{"lists": [...], "caches": [...], "errors": [...]}``;
    a split with errors gets no list (its error names the files), the others are still written."""
    data_dir = Path(data_dir)
    out_dir = Path(out_dir) if out_dir is not None else data_dir
    if not data_dir.is_dir():
        raise FileNotFoundError(tr("data folder {folder} does not exist: run `python -m data_tools samples` or "
                                   "`download` first, or pass --data-dir / set SR_DATA_DIR", folder=data_dir))
    splits = find_splits(data_dir, scale)
    if not splits:
        raise PairError(tr("{folder}: no dataset found (expected <Set>/HR/*.png or DIV2K_train_HR/*.png)",
                           folder=data_dir))
    result = {"lists": [], "caches": [], "errors": [], "generated": {}}
    for split in splits:
        try:
            check_split(split, data_dir, scale, edge, generate, progress)
        except PairError as e:
            result["errors"].append(str(e))
            continue
        result["lists"].append(write_list(split, data_dir, scale, edge, out_dir))
        if split.generated:
            result["generated"][split.name] = len(split.generated)
        wanted = cache_splits if cache_splits is not None else [s.name for s in splits if "train" in s.name]
        if split.name in wanted:
            result["caches"].append(build_cache(out_dir, split.name, scale, progress))
    return result


def add_arguments(parser) -> None:
    parser.add_argument("--scale", type=int, default=4, help="SR factor (default 4)")
    parser.add_argument("--edge", choices=["symmetric", "replicate"], default="symmetric",
                        help="MATLAB edge rule for LR images made here (default symmetric, as the DIV2K/EDSR "
                             "packs; the SelfExSR Set5/Set14 files used replicate)")
    parser.add_argument("--no-generate", action="store_true", help="report missing LR files instead of making them")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where to write lists/ and cache/ (default: the data folder)")
    parser.add_argument("--cache", nargs="*", default=None, metavar="SPLIT",
                        help="splits to decode into the training cache (default: those named *train*)")


def run(args) -> int:
    result = prepare(args.data_dir, args.scale, args.edge, not args.no_generate, args.cache, out_dir=args.out_dir)
    for p in result["lists"]:
        n = len(json.loads(Path(p).read_text())["images"])
        print(f"list  {p}  ({n} pairs)")
    for name, n in result["generated"].items():
        print(f"made  {n} missing LR image(s) for {name} with imresize (edge={args.edge})")
    for p in result["caches"]:
        print(f"cache {p}")
    for e in result["errors"]:
        print(f"error {e}")
    return 1 if result["errors"] else 0
