"""A frozen MOS study: the image versions, the calibration pairs, the raters and their blinded orders, on disk.

Layout of a study folder (``course/studies/<assignment>/`` by default; git-ignored by its own ``.gitignore``)::

    study.json      what was collected: split label, mode (rating or pairwise), language of the pages, versions, items {id: version,
                    image[, repeat_of]}, calibration, raters' orders (their sets, :mod:`course.mos.design`) and own
                    versions; the key from opaque ids to students (never served)
    raters.json     {rater: secret token} (mode 0600: whoever reads it can rate as anyone)
    links.txt       one private link per rater (mode 0600)
    images/<id>.png every item, re-encoded from its decoded pixels (no metadata of the student's file survives)
    calibration/<id>.png
    answers.db      SQLite, written by the web app (:mod:`course.mos.store`)

Versions are named ``student:<id>``, ``control:nn``, ``control:bicubic``, ``control:hr`` and ``reference:<name>``;
items of ``gold:degraded`` (a known-bad gold item) are shown to every rater but are not a version of the results.
Every item has an opaque random id; the web app only ever shows those. A later change to a submission does not change
the study: the pixels are copied in when it is frozen.
"""
from __future__ import annotations

import json
import os
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course.mos.collect import ReferenceSet, bicubic
from course.mos.design import assign_students, rater_order

__all__ = ["Study", "freeze", "GOLD_DEGRADED", "degraded",
           "load_study", "nearest_upscale", "calibration_pairs", "CONTROLS",
           "default_study_folder", "write_links", "make_study_folder"]

#: The hidden controls: anchors of the scale that every rater sees.
CONTROLS = ("control:nn", "control:bicubic", "control:hr")
#: A clearly degraded gold item (nearest-neighbour from a 2x smaller LR image: known place 1), shown to every rater
#: for screening and never reported as a version.
GOLD_DEGRADED = "gold:degraded"


def degraded(lr: np.ndarray, scale: int) -> np.ndarray:
    """``(h·scale, w·scale, 3)`` uint8: the nearest-neighbour upscale of ``lr`` halved again (clearly worse than
    NN)."""
    h, w = lr.shape[:2]
    return nearest_upscale(lr[::2, ::2], 2 * scale)[: h * scale, : w * scale]


def nearest_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor: every pixel repeated ``scale`` x ``scale`` (the kit's
    ``imresize`` has only bicubic and bilinear kernels; at an integer factor this is exactly MATLAB's 'nearest')."""
    return np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)


def calibration_pairs(data_dir=None, n: int = 3, size: int = 192, scale: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` (nearest-neighbour, HR) crops of ``size`` x ``size`` from training photos (the bundled samples' train
    split: never an evaluation image). The NN crop is made from the prepared MATLAB-bicubic LR image."""
    from data_tools.samples import ensure_sample_data
    from sr_utils.color import load_rgb
    from sr_utils.datasets import SREvalDataset
    from sr_utils.lists import default_data_dir, list_path

    data_dir = ensure_sample_data(Path(data_dir) if data_dir is not None else default_data_dir(), scale,
                                  progress=False)
    ds = SREvalDataset(list_path(data_dir, "samples_train", scale))
    low = [load_rgb(ds.root / im["lr"]) for im in ds.images]  # small: choose on these, decode few HR photos
    usable = [i for i, lr in enumerate(low) if min(lr.shape[:2]) * scale >= size]
    usable.sort(key=lambda i: float(low[i].astype(np.float64).std(axis=2).mean()) < 1.0)  # colour photos first
    pairs = []
    for i in usable[:n]:
        _, lr, hr = ds[i]
        top = (hr.shape[0] - size) // 2 // scale * scale
        left = (hr.shape[1] - size) // 2 // scale * scale
        lo = lr[top // scale: (top + size) // scale, left // scale: (left + size) // scale]
        pairs.append((nearest_upscale(lo, scale), hr[top: top + size, left: left + size]))
    return pairs


@dataclass
class Study:
    folder: Path
    meta: dict
    tokens: dict[str, str]  # rater -> token

    @property
    def db_path(self) -> Path:
        return self.folder / "answers.db"

    def item(self, item_id: str) -> dict:
        return self.meta["items"][item_id]


def _save_png(img: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8), "RGB").save(path, compress_level=1)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def make_study_folder(folder: Path) -> Path:
    """Create ``folder`` with a ``.gitignore`` that keeps all of it (students' images, tokens) out of git."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".gitignore").write_text("*\n")
    return folder


def freeze(folder: Path, ref: ReferenceSet, students: dict[str, dict[str, np.ndarray]],
           raters: list[str], peer: bool = False, references: dict[str, dict[str, np.ndarray]] | None = None,
           calibration: list[tuple[np.ndarray, np.ndarray]] | None = None, seed: int | None = None,
           force: bool = False, per_student: int | None = None, repeats: int = 3, mode: str = "rating",
           pairs_per_rater: int = 30, language: str | None = None) -> Study:
    """Write a new study in ``folder`` and return it.

    Args:
        ref: the evaluation split (its LR/HR give the controls).
        students: accepted submissions ``{student: {image name: (H, W, 3) uint8}}``.
        raters: names of the non-student raters (instructor, TAs); with ``peer`` every student rates too, never
            their own images.
        references: optional ``{name: {image name: pixels}}`` shown as ``reference:<name>`` versions.
        calibration: (NN, HR) pairs shown first to every rater (see :func:`calibration_pairs`).
        seed: seeds the blinded orders (default: fresh randomness).
        force: replace an existing study (its answers are lost).
        per_student: raters per student (a balanced random assignment, :mod:`course.mos.design`); None: every
            rater rates every student (but their own).
        repeats: items each rater sees twice (test–retest screening; none in pairwise mode).
        mode: ``"rating"`` (scores 1..5) or ``"pairwise"`` (the better of two versions of one image,
            :mod:`course.mos.pairwise`), ``pairs_per_rater`` comparisons each.
        language: the language of the rating pages (``en`` or ``zh-CN``); None: each rater's browser's
            (:mod:`course.mos.i18n`). A rater's ``?lang=`` still wins.
    """
    if mode not in ("rating", "pairwise"):
        raise ValueError(f"--mode must be 'rating' or 'pairwise', got {mode!r}")
    if language is not None:
        from sr_utils.i18n import check_language

        check_language(language)
    if mode == "pairwise":
        repeats = 0
    folder = Path(folder)
    if (folder / "study.json").exists() and not force:
        raise FileExistsError(f"{folder} already holds a study (with its answers): pass --force to replace it, "
                              "or --study another folder")
    if not students and not references:
        raise ValueError("nothing to rate: no submission was collected")
    for rater in raters:
        if not rater or len(rater) > 100 or not rater.isprintable() or rater != rater.strip():
            raise ValueError(f"rater name {rater!r}: 1-100 printable characters, no surrounding spaces")
    for name in ("images", "calibration"):
        if (folder / name).is_dir():
            for old in (folder / name).iterdir():
                old.unlink()
    for stale in ("answers.db", "answers.db-wal", "answers.db-shm"):
        (folder / stale).unlink(missing_ok=True)
    make_study_folder(folder)
    (folder / "images").mkdir(exist_ok=True)
    (folder / "calibration").mkdir(exist_ok=True)
    versions: dict[str, dict[str, np.ndarray]] = {f"student:{s}": imgs for s, imgs in sorted(students.items())}
    versions["control:nn"] = {n: nearest_upscale(ref.lr[n], ref.scale) for n in ref.names}
    versions["control:bicubic"] = {n: bicubic(ref.lr[n], ref.scale) for n in ref.names}
    versions["control:hr"] = dict(ref.hr)
    for name, imgs in sorted((references or {}).items()):
        versions[f"reference:{name}"] = imgs
    shown = dict(versions)
    shown[GOLD_DEGRADED] = {n: degraded(ref.lr[n], ref.scale) for n in ref.names}  # gold only: not a row of results
    items = {}
    for version, imgs in shown.items():
        for image in ref.names:
            item_id = secrets.token_hex(8)
            _save_png(imgs[image], folder / "images" / f"{item_id}.png")
            items[item_id] = {"version": version, "image": image}
    calib = []
    for nn, hr in calibration or []:
        for img, score in ((nn, 1), (hr, 5)):
            cid = secrets.token_hex(8)
            _save_png(img, folder / "calibration" / f"{cid}.png")
            calib.append({"id": cid, "score": score})
    rng = random.Random(seed if seed is not None else secrets.randbits(64))
    everyone = list(dict.fromkeys([*raters, *(sorted(students) if peer else [])]))
    assigned = assign_students(sorted(students), everyone, per_student, rng)
    orders, own, repeated = {}, {}, {}
    for rater in everyone:
        own[rater] = f"student:{rater}" if rater in students else None
        mine = {v for v in shown if not v.startswith("student:")} | {f"student:{s}" for s in assigned[rater]}
        orders[rater], extra = rater_order(items, mine, repeats, rng, lambda: secrets.token_hex(8))
        repeated.update(extra)
    for rid, it in repeated.items():  # a repeat is the same pixels under a new id
        (folder / "images" / f"{rid}.png").write_bytes((folder / "images" / f"{it['repeat_of']}.png").read_bytes())
    items.update(repeated)
    meta = {"format": 2, "per_student": per_student, "mode": mode, "pairs_per_rater": pairs_per_rater,
            "split": ref.label, "is_set5": ref.is_set5, "list_file": str(ref.list_file),
            "scale": ref.scale, "images": ref.names, "versions": list(versions), "items": items,
            "calibration": calib, "raters": everyone, "orders": orders, "own_version": own, "language": language}
    from sr_utils.files import atomic_write_bytes

    atomic_write_bytes(folder / "study.json", json.dumps(meta, indent=1).encode())  # never half-written
    tokens = {r: secrets.token_urlsafe(24) for r in everyone}
    _write_private(folder / "raters.json", json.dumps(tokens, indent=1))
    return Study(folder, meta, tokens)


def default_study_folder(course_root: Path, assignment: str = "superres") -> Path:
    """Where ``collect`` freezes a study and the other subcommands look for it."""
    return Path(course_root) / "course" / "studies" / assignment


def load_study(folder: Path) -> Study:
    """A study written by :func:`freeze`; ``FileNotFoundError`` naming the command that makes one."""
    folder = Path(folder)
    if not (folder / "study.json").is_file():
        raise FileNotFoundError(f"{folder} holds no study: run `python -m course.mos collect superres` first")
    meta = json.loads((folder / "study.json").read_text())
    tokens = json.loads((folder / "raters.json").read_text())
    return Study(folder, meta, tokens)


def write_links(study: Study, base_url: str) -> Path:
    """``links.txt``: one private link per rater (mode 0600); returns its path."""
    lines = [f"{rater}\t{base_url.rstrip('/')}/r/{token}" for rater, token in study.tokens.items()]
    path = study.folder / "links.txt"
    _write_private(path, "\n".join(lines) + "\n")
    return path
