"""The end-to-end jobs behind the command line: evaluate, super-resolve, report, demo.

Every step reuses the pieces the notebooks use (``SREvalDataset``, ``super_resolve``, ``evaluate_sr``,
``comparison_figure``), so the numbers of the command line and of the notebooks are the same numbers.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .evaluate import convention_note, markdown_table

__all__ = ["load_trained", "evaluate_models", "write_tables", "super_resolve_paths", "write_set_images",
           "comparison_grid", "write_report", "run_demo"]


def load_trained(path, device="cpu"):
    """An SRResNet or SRGAN generator from a kit checkpoint (``model`` + ``model_kwargs``), in eval mode."""
    from .checkpoint import load_checkpoint
    from .trainer import reference_modules

    models, _ = reference_modules()
    ck = load_checkpoint(path)
    net = models.SRResNet(**ck["model_kwargs"])
    state = ck["model"]
    if any(k.startswith("net.") for k in state):  # a Generator's state_dict wraps the SRResNet in .net
        gen = models.Generator(**ck["model_kwargs"])
        gen.load_state_dict(state)
        net = gen
    else:
        net.load_state_dict(state)
    return net.to(device).eval()


def evaluate_models(models: dict, test_sets: dict, tile: int | None = None, progress: bool = True):
    """Per-image rows ``{set, method, image, psnr, ssim}`` for bicubic and every model on every test set."""
    from tqdm.auto import tqdm

    from .datasets import SREvalDataset
    from .inference import bicubic_upscale, super_resolve
    from .metrics import evaluate_sr

    rows = []
    for set_name, list_file in test_sets.items():
        ds = SREvalDataset(list_file)
        for i in tqdm(range(len(ds)), desc=f"evaluate {set_name}", disable=not progress, leave=False):
            name, lr, hr = ds[i]
            outputs = {"bicubic": bicubic_upscale(lr, ds.scale)}
            outputs.update({m: super_resolve(net, lr, tile=tile) for m, net in models.items()})
            for method, sr in outputs.items():
                p, s = evaluate_sr(sr, hr, ds.scale)
                rows.append({"set": set_name, "method": method, "image": name, "psnr": p, "ssim": s})
    return rows


def _means(rows):
    keys = list(dict.fromkeys((r["set"], r["method"]) for r in rows))
    return [{"set": s, "method": m, "psnr": float(np.mean([r["psnr"] for r in rows if (r["set"], r["method"]) == (s, m)])),
             "ssim": float(np.mean([r["ssim"] for r in rows if (r["set"], r["method"]) == (s, m)]))} for s, m in keys]


def write_tables(rows, out_dir, scale: int = 4) -> dict:
    """``table.md``, ``table.csv``, ``table.tex`` (means per set and method) and ``per_image.csv``; the evaluation
    convention is printed under the Markdown and LaTeX tables. Returns the paths and the Markdown text."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    means = _means(rows)
    note = convention_note(scale)
    md = markdown_table(means, ["set", "method", "psnr", "ssim"], mean_row=False, caption=note)
    (out / "table.md").write_text(md + "\n")
    for name, data, fields in (("table.csv", means, ["set", "method", "psnr", "ssim"]),
                               ("per_image.csv", rows, ["set", "method", "image", "psnr", "ssim"])):
        with open(out / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(data)
    lines = [r"\begin{tabular}{llrr}", r"\hline", r"Set & Method & PSNR (dB) & SSIM \\", r"\hline"]
    def tex(text: str) -> str:
        return text.replace("_", "\\_")

    lines += [f"{tex(r['set'])} & {r['method']} & {r['psnr']:.2f} & {r['ssim']:.4f} \\\\" for r in means]
    lines += [r"\hline", r"\end{tabular}", "% " + note]
    (out / "table.tex").write_text("\n".join(lines) + "\n")
    return {"md": md, "paths": [out / n for n in ("table.md", "table.csv", "table.tex", "per_image.csv")]}


def super_resolve_paths(net, inputs, out_dir, tile: int | None = None) -> list[Path]:
    """Super-resolve an image file or every image of a folder into ``out_dir`` (PNG, same names)."""
    from PIL import Image

    from .color import load_rgb
    from .inference import super_resolve

    src = Path(inputs)
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp")) \
        if src.is_dir() else [src]
    if not files:
        raise FileNotFoundError(f"no image found in {src}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        Image.fromarray(super_resolve(net, load_rgb(f), tile=tile)).save(out / f"{f.stem}.png")
        written.append(out / f"{f.stem}.png")
    return written


def write_set_images(net, list_file, out_dir, tile: int | None = None) -> list[Path]:
    """SR images of every LR image of a prepared split (e.g. Set5) for the human evaluation."""
    from PIL import Image

    from .datasets import SREvalDataset
    from .inference import super_resolve

    ds = SREvalDataset(list_file)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(ds)):
        name, lr, _ = ds[i]
        Image.fromarray(super_resolve(net, lr, tile=tile)).save(out / f"{name}.png")
        paths.append(out / f"{name}.png")
    return paths


def comparison_grid(models: dict, list_file, out_path, n_images: int = 3) -> Path:
    """Rows of bicubic / each model / HR with zoomed crops and per-image PSNR/SSIM, as one PNG."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from .datasets import SREvalDataset
    from .inference import bicubic_upscale, super_resolve
    from .metrics import evaluate_sr
    from .plotting import most_detailed_crop

    ds = SREvalDataset(list_file)
    n = min(n_images, len(ds))
    labels = ["bicubic", *models, "HR"]
    fig = Figure(figsize=(2.6 * len(labels), 5.2 * n))
    axes = fig.subplots(2 * n, len(labels), squeeze=False)
    for row in range(n):
        name, lr, hr = ds[row]
        images = {"bicubic": bicubic_upscale(lr, ds.scale), **{m: super_resolve(net, lr) for m, net in models.items()},
                  "HR": hr}
        size = max(16, min(hr.shape[:2]) // 4)
        top, left = most_detailed_crop(hr, size)
        for k, label in enumerate(labels):
            img = images[label]
            ax, zoom = axes[2 * row, k], axes[2 * row + 1, k]
            ax.imshow(img)
            ax.add_patch(Rectangle((left, top), size, size, fill=False, edgecolor="yellow"))
            title = f"{name}: {label}" if k == 0 else label
            if label != "HR":
                p, s = evaluate_sr(img, hr, ds.scale)
                title += f"\n{p:.2f} dB / {s:.4f}"
            ax.set_title(title, fontsize=9)
            zoom.imshow(img[top: top + size, left: left + size], interpolation="nearest")
            for a in (ax, zoom):
                a.set_xticks([])
                a.set_yticks([])
    fig.tight_layout()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def write_report(run_dir, out_path=None) -> Path:
    """Fill ``course/report_template.md``'s structure from a run folder (configs, curves, tables, Set5 grid)."""
    from .checkpoint import load_checkpoint

    run = Path(run_dir)
    out = Path(out_path) if out_path else run / "report.md"
    parts = ["# Super-resolution x4 with SRResNet and SRGAN: report", "",
             f"*Generated by `python -m sr_utils report {run}` on {time.strftime('%Y-%m-%d %H:%M')}.*", "",
             "## 1. Training method", ""]
    for stage in ("srresnet", "srgan"):
        ck_path = run / stage / "last.pth"
        if ck_path.is_file():
            ck = load_checkpoint(ck_path)
            cfg = ck["config"]
            parts.append(f"**{stage}**: {ck['step']} iterations, batch {cfg['batch_size']}, crop {cfg['crop_size']}, "
                         f"Adam lr {cfg['lr']} ({cfg['schedule']} schedule, warm-up {cfg['warmup']}), "
                         f"{cfg['n_blocks']} residual blocks x {cfg['n_channels']} channels"
                         + (f", content {cfg['content']}, beta {cfg['beta']}" if stage == "srgan" else "") + ".")
            if (run / stage / "curves.png").is_file():
                parts += ["", f"![{stage} curves]({stage}/curves.png)", ""]
    parts += ["## 2. Best parameters", "", "```json"]
    for stage in ("srresnet", "srgan"):
        if (run / stage / "last.pth").is_file():
            parts.append(json.dumps({stage: load_checkpoint(run / stage / "last.pth")["config"]}, indent=1))
    parts += ["```", "", "## 3. Test results", ""]
    table = run / "eval" / "table.md"
    parts.append(table.read_text() if table.is_file() else "*(run `python -m sr_utils evaluate` first)*")
    parts += ["", "## 4. Set5 results", ""]
    if (run / "comparison.png").is_file():
        parts.append("![comparison](comparison.png)")
    parts += ["", "## 5. What was tried", "", "*(to be written by the author)*", ""]
    out.write_text("\n".join(parts))
    return out


def run_demo(out_dir, data_dir=None, grade: bool = True, progress: bool = True, log=print,
             overrides: dict | None = None) -> dict:
    """The README's main job, offline: samples -> SRResNet -> SRGAN -> tables -> pictures -> report -> release ->
    autograde of the reference solution, all under ``out_dir``. ``overrides`` change both training profiles
    (e.g. ``{"iterations": 2}`` in tests). Returns a summary."""
    from .notebook import default_data_dir, ensure_sample_data
    from .trainer import PROFILES, TrainConfig, train
    from .training import test_lists

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = ensure_sample_data(data_dir or default_data_dir())
    log(f"[1/6] data: bundled samples in {data}")
    sets = test_lists(data)
    summary = {"out_dir": str(out)}
    for stage in ("srresnet", "srgan"):
        cfg = TrainConfig(**{**PROFILES[f"cpu-small-{stage}"], "data_dir": str(data), "content": "mse",
                             "srresnet_checkpoint": str(out / "srresnet" / "last.pth"), **(overrides or {})})
        log(f"[{2 if stage == 'srresnet' else 3}/6] training {stage} ({cfg.iterations} iterations, CPU profile"
            + (", SRGAN-MSE content: no ImageNet VGG19 weights offline)" if stage == "srgan" else ")"))
        summary[stage] = train(cfg, out / stage, progress=progress, log=log)["best_val_psnr"]
    # the final weights, not the "best" ones: validation uses the test photos here, so selecting on it would leak
    trained = {"SRResNet": load_trained(out / "srresnet" / "last.pth"), "SRGAN": load_trained(out / "srgan" / "last.pth")}
    log("[4/6] evaluating against bicubic")
    rows = evaluate_models(trained, sets, progress=progress)
    tables = write_tables(rows, out / "eval")
    log(tables["md"])
    first = next(iter(sets.values()))
    comparison_grid(trained, first, out / "comparison.png")
    write_set_images(trained["SRGAN"], sets.get("Set5", first), out / "submission" / "set5")
    report = write_report(out)
    log(f"[5/6] pictures, Set5-style submission folder and report: {report}")
    means = {(r["set"], r["method"]): r["psnr"] for r in _means(rows)}
    set_name = next(iter(sets))
    summary["gain_db"] = means[(set_name, "SRResNet")] - means[(set_name, "bicubic")]
    if grade:
        summary["grades"] = grade_reference(out / "grading", progress=progress, log=log)
    summary["seconds"] = time.perf_counter() - t0
    return summary


def copy_course(dest) -> Path:
    """A private copy of the course for nbgrader runs: ``nbgrader_config.py``, ``source/`` (without generated
    modules or run outputs) and ``course/grading/``. ``dest`` must not exist or be empty. Returns ``dest``."""
    from .notebook import find_project_root

    root = find_project_root(Path(__file__).resolve().parent)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "nbgrader_config.py", dest)
    shutil.copytree(root / "source", dest / "source", ignore=shutil.ignore_patterns("*.py", "checkpoints", "results",
                                                                                   "submission", "__pycache__"))
    shutil.copytree(root / "course" / "grading", dest / "course" / "grading",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def grade_reference(work_dir, progress: bool = True, log=print) -> dict:
    """Build the student release and autograde the reference solution with nbgrader, in a private course copy."""
    work = Path(work_dir)
    if work.exists():
        shutil.rmtree(work)
    copy_course(work)
    nbgrader = Path(sys.executable).parent / "nbgrader"
    if not nbgrader.exists():
        log("[6/6] nbgrader is not installed here (pip install -e '.[instructor]'): release and grading skipped")
        return {}
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    subprocess.run([str(nbgrader), "generate_assignment", "superres", "--force"], cwd=work, env=env, check=True,
                   capture_output=True)
    sub = work / "course" / "submitted" / "reference" / "superres"
    sub.mkdir(parents=True)
    for nb in (work / "source" / "superres").glob("*.ipynb"):
        shutil.copy(nb, sub)
    log("[6/6] release built; autograding the reference solution with nbgrader (about 40 s)")
    subprocess.run([str(nbgrader), "autograde", "superres", "--force"], cwd=work, env=env, check=True,
                   capture_output=True)
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(work / "course" / "gradebook.db"), course_id="sr-course-kit") as gb:
        s = gb.find_submission("superres", "reference")
        grades = {g.name: (g.auto_score, g.max_score) for nb in s.notebooks for g in nb.grades
                  if g.auto_score is not None and not g.needs_manual_grade}
    got = sum(v[0] for v in grades.values())
    total = sum(v[1] for v in grades.values())
    log(f"      reference solution: {got:g} / {total:g} autograded points")
    return {"points": got, "max_points": total, "release": str(work / "release")}
