"""The end of ``make demo``: a small MOS study on the demo's outputs, answered by two scripted raters.

Synthetic "students" are the demo's SRGAN images degraded three ways (blurred, noisy, JPEG-compressed); the demo's
SRResNet and SRGAN checkpoints give the reference versions. The scripted raters score an image from its PSNR against
the HR (kit convention) between the nearest-neighbour control (1) and the HR (5), each with its own random jitter: a
stand-in for people, so that a newcomer sees the whole path (collect → freeze → answers → results page) without raters.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

__all__ = ["degrade", "make_class", "item_quality", "scripted_scores", "run_demo_study"]

DEGRADATIONS = ("blur", "noise", "jpeg")


def degrade(img: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> the same size, degraded: ``blur`` (Gaussian, radius 1.5), ``noise`` (Gaussian,
    sigma 10 levels) or ``jpeg`` (quality 15)."""
    from PIL import Image, ImageFilter

    if how == "blur":
        return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(1.5)))
    if how == "noise":
        return np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
    if how == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=15)
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            return np.asarray(im.convert("RGB"))
    raise ValueError(f"unknown degradation {how!r}")


def make_class(submission: Path, dest: Path, seed: int = 0) -> list[str]:
    """``dest/student-<how>/submission/<folder>/*.png`` (``<folder>``: the name of ``submission``, ``set5`` or
    ``samples``), one synthetic student per degradation of ``submission``'s PNGs."""
    from PIL import Image

    from sr_utils.color import load_rgb

    rng = np.random.default_rng(seed)
    files = sorted(Path(submission).glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no PNG in {submission}: run `make demo` (or `python -m course demo`) first")
    students = []
    for how in DEGRADATIONS:
        folder = dest / f"student-{how}" / "submission" / Path(submission).name
        folder.mkdir(parents=True, exist_ok=True)
        for f in files:
            Image.fromarray(degrade(load_rgb(f), how, rng)).save(folder / f.name)
        students.append(f"student-{how}")
    return students


def item_quality(study) -> dict[str, float]:
    """``{item: quality in [0, 1]}``: PSNR against the HR (kit convention) from the NN control's (0) to 8 dB above
    it (1); the HR itself is 1."""
    from sr_utils.color import load_rgb
    from sr_utils.metrics import evaluate_sr

    items, scale = study.meta["items"], study.meta["scale"]
    by_key = {(it["version"], it["image"]): i for i, it in items.items()}
    hr = {im: load_rgb(study.folder / "images" / f"{by_key[('control:hr', im)]}.png") for im in study.meta["images"]}
    psnr_nn = {im: evaluate_sr(load_rgb(study.folder / "images" / f"{by_key[('control:nn', im)]}.png"), hr[im],
                               scale)[0] for im in study.meta["images"]}
    quality = {}
    for item, it in items.items():
        if it["version"] == "control:hr":
            quality[item] = 1.0
            continue
        p, _ = evaluate_sr(load_rgb(study.folder / "images" / f"{item}.png"), hr[it["image"]], scale)
        quality[item] = 1.0 if math.isinf(p) else min(max((p - psnr_nn[it["image"]]) / 8.0, 0.0), 1.0)
    return quality


def scripted_scores(order: list[str], quality: dict[str, float], rng: np.random.Generator,
                    jitter: float) -> dict[str, int]:
    """``{item: score}`` of one scripted rater: ``1 + 4 · quality`` plus Gaussian jitter, rounded, clipped to 1..5."""
    return {item: int(np.clip(round(1 + 4 * quality[item] + rng.normal(0, jitter)), 1, 5)) for item in order}


def run_demo_study(out_dir, data_dir=None, seed: int = 0, log=print) -> dict[str, Path]:
    """Collect the synthetic class of ``out_dir`` (a ``python -m course demo`` output folder), freeze a study in
    ``out_dir/mos/study``, answer it with two scripted raters, write the results to ``out_dir/mos/results``."""
    from course.mos.collect import collect, reference_set
    from course.mos.references import reference_outputs
    from course.mos.results import analyse, write_results
    from course.mos.store import AnswerStore
    from course.mos.study import calibration_pairs, freeze

    out = Path(out_dir)
    ref = reference_set(data_dir)
    class_dir = out / "mos" / "class"
    make_class(out / "submission" / ref.folder, class_dir, seed)
    got = collect(class_dir, ref, log=log)
    references = {}
    for name in ("srresnet", "srgan"):
        ck = out / name / "best.pth"
        if ck.is_file():
            references[name] = reference_outputs(ck, ref.lr)
    raters = ["scripted-a", "scripted-b"]
    study = freeze(out / "mos" / "study", ref, got.accepted, raters, references=references,
                   calibration=calibration_pairs(data_dir, n=2), seed=seed, force=True)
    store = AnswerStore(study.db_path)
    quality = item_quality(study)
    for k, rater in enumerate(raters):
        store.mark_calibrated(rater)
        rng = np.random.default_rng(seed + k)
        for item, score in scripted_scores(study.meta["orders"][rater], quality, rng, 0.4 + 0.3 * k).items():
            store.answer(rater, item, score)
    a = analyse(study)
    paths = write_results(a, out / "mos" / "results")
    log(f"demo study ({ref.label}): {len(got.accepted)} synthetic students, {len(references)} reference models, "
        f"{a['n_ratings']} scripted ratings")
    return paths
