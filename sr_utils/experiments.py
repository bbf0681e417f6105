"""Every training run is an experiment: its record, the listing of runs, their curves on one plot, and the
report's table of attempts.

Where runs live (relative to the assignment's folder):

- ``checkpoints/<stage>/`` — the default run (notebook 03; where notebooks 04 and 05 and the grader look);
- ``experiments/<name>/<stage>/`` — a named variant (``train-srresnet --name l1``, or ``run_dir("l1", stage)`` in a
  notebook). A new name never touches another run.

Each run folder holds ``config.json`` (the full :class:`~sr_utils.config.TrainConfig`, the AMP mode, the validation
split, start time), ``sources/`` (the ``solver.py`` and ``models.py`` as used), ``log.csv``, ``curves.png``,
``best.pth``/``last.pth`` and ``tb/`` (TensorBoard event files: ``tensorboard --logdir experiments``).
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

from .i18n import tr

__all__ = ["DEFAULT_ROOT", "EXPERIMENTS_ROOT", "run_dir", "record_run", "tensorboard_writer", "list_runs",
           "select", "runs_table", "plot_runs", "attempts_rows", "write_attempts", "train_variant",
           "show_runs", "evaluate_runs"]

DEFAULT_ROOT = "checkpoints"
EXPERIMENTS_ROOT = "experiments"
#: Settings that do not change what is learned, left out of "what changed".
_NOT_CHANGES = ("data_dir", "train_list", "val_list", "workers", "note", "srresnet_checkpoint", "compile", "stage")


def run_dir(name: str | None, stage: str, folder=".") -> Path:
    """``<folder>/checkpoints/<stage>`` for the default run (``name`` None or ``"default"``), else
    ``<folder>/experiments/<name>/<stage>``. Names are plain words (letters, digits, ``-``, ``_``, ``.``)."""
    if not name or name == "default":
        return Path(folder) / DEFAULT_ROOT / stage
    if not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ValueError(tr("run name {name!r}: use letters, digits, '-', '_' or '.' (it becomes a folder name)",
                            name=name))
    return Path(folder) / EXPERIMENTS_ROOT / name / stage


def _source_text(module) -> str | None:
    import inspect

    path = getattr(module, "__file__", None)
    if path and Path(path).is_file():
        return Path(path).read_text()
    try:
        return inspect.getsource(module)
    except (TypeError, OSError):
        return None


def record_run(out, cfg, models, solver, amp: str = "off", val_split: str = "") -> Path:
    """Write ``<out>/config.json`` and ``<out>/sources/{models,solver}.py`` (the modules' text, when it can be read).
    Returns the config path."""
    import torch

    from .files import atomic_write_bytes

    out = Path(out)
    for name, module in (("models.py", models), ("solver.py", solver)):
        text = _source_text(module)
        if text is not None:
            atomic_write_bytes(out / "sources" / name, text.encode())
    record = {"config": asdict(cfg), "amp": amp, "val_split": val_split, "torch": torch.__version__,
              "device": "cuda" if torch.cuda.is_available() else "cpu", "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_bytes(out / "config.json", json.dumps(record, indent=1).encode())
    return out / "config.json"


def tensorboard_writer(out, purge_step: int | None = None):
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``<out>/tb`` (events after ``purge_step`` are dropped when a run
    resumes), or None when the ``tensorboard`` package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(Path(out) / "tb"), purge_step=purge_step)


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return rows


def _record(path: Path) -> dict:
    """A run's ``config.json``, or for a run without one its ``last.pth``'s config."""
    if (path / "config.json").is_file():
        return json.loads((path / "config.json").read_text())
    from .checkpoint import load_checkpoint

    ck = load_checkpoint(path / "last.pth")
    return {"config": ck["config"], "val_split": ck.get("val_split", "")}


def _changes(config: dict, baseline: dict | None) -> str:
    if baseline is None:
        return ""
    diff = [f"{k}={config[k]}" for k in config if k not in _NOT_CHANGES and config.get(k) != baseline.get(k)]
    return ", ".join(diff) or "(the default run's settings)"


def list_runs(folder=".") -> list[dict]:
    """Every run under ``<folder>/checkpoints`` and ``<folder>/experiments``, default runs first: dicts with
    ``name``, ``stage``, ``path``, ``config``, ``history`` (log rows), ``changes`` (settings that differ from the
    default run of the same stage), ``best_step``, ``best_val_psnr``, ``steps``, ``time_s``, ``task`` (``bicubic``
    or ``realistic degradation``) and ``note``."""
    folder = Path(folder)
    found = []
    for stage_dir in sorted((folder / DEFAULT_ROOT).glob("*/config.json")):
        found.append(("default", stage_dir.parent))
    for stage_dir in sorted((folder / EXPERIMENTS_ROOT).glob("*/*/config.json")):
        found.append((stage_dir.parent.parent.name, stage_dir.parent))
    for last in sorted((folder / DEFAULT_ROOT).glob("*/last.pth")):  # a default run trained before run records
        if not (last.parent / "config.json").is_file():
            found.append(("default", last.parent))
    records = [(name, path, _record(path)) for name, path in found]
    baselines = {r["config"]["stage"]: r["config"] for name, _, r in records if name == "default"}
    runs = []
    for name, path, record in records:
        cfg = record["config"]
        history = _read_log(path / "log.csv")
        val = [(r["step"], r["val_psnr"]) for r in history if "val_psnr" in r]
        best_step, best = max(val, key=lambda v: v[1]) if val else (None, math.nan)
        steps, prev, total = 0, 0, 0.0
        for r in history:
            total += r.get("sec_per_it", 0.0) * (r["step"] - prev)
            prev = steps = int(r["step"])
        runs.append({"name": name, "stage": cfg["stage"], "path": path, "config": cfg, "history": history,
                     "changes": _changes(cfg, baselines.get(cfg["stage"])) if name != "default" else "",
                     "best_step": int(best_step) if best_step is not None else None, "best_val_psnr": best,
                     "steps": steps, "time_s": total, "note": cfg.get("note", ""), "amp": record.get("amp", "off"),
                     "val_split": record.get("val_split", ""),
                     "task": "realistic degradation" if cfg.get("degradation") == "realistic" else "bicubic"})
    return runs


def _label(run: dict) -> str:
    return f"{run['name']}/{run['stage']}"


def select(runs: list[dict], names) -> list[dict]:
    """The runs whose ``name`` or ``name/stage`` is in ``names`` (all when ``names`` is empty), in ``names``' order;
    an unknown name raises ``ValueError`` listing the known ones."""
    if not names:
        return runs
    out = []
    for wanted in names:
        mine = [r for r in runs if wanted in (r["name"], _label(r))]
        if not mine:
            raise ValueError(tr("no run {name!r}; runs: {runs}", name=wanted,
                                runs=", ".join(_label(r) for r in runs) or tr("none yet")))
        out += [r for r in mine if r not in out]
    return out


def runs_table(runs: list[dict]) -> str:
    """A Markdown table of runs: name, stage, task, what changed, steps, best iteration, best validation PSNR, time."""
    lines = [tr("| run | stage | task | what changed | steps | best iteration | val PSNR (dB) | time |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        changed = "; ".join(x for x in (r["changes"], r["note"]) if x) or "-"
        lines.append(f"| {r['name']} | {r['stage']} | {r['task']} | {changed} | {r['steps']} | "
                     f"{r['best_step'] if r['best_step'] is not None else '-'} | {r['best_val_psnr']:.2f} | "
                     f"{r['time_s'] / 60:.1f} min |")
    return "\n".join(lines)


def plot_runs(runs: list[dict], path=None, title: str | None = None):
    """Validation PSNR against the iteration, one line per run (a ``matplotlib`` Figure; saved when ``path``).
    ``title`` defaults to "validation Y-PSNR"."""
    from .plotting import _fonts, figure_language

    language = figure_language()
    with _fonts(language):
        return _plot_runs(runs, path, title or tr("validation Y-PSNR", language=language), language)


def _plot_runs(runs: list[dict], path, title: str, language: str):
    from matplotlib.figure import Figure

    from .plotting import _save

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for r in runs:
        val = [(h["step"], h["val_psnr"]) for h in r["history"] if "val_psnr" in h]
        if val:
            ax.plot(*zip(*val), marker="o" if len(val) < 30 else None, label=_label(r))
    ax.set_xlabel(tr("iteration", language=language))
    ax.set_ylabel("dB")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return fig


def attempts_rows(runs: list[dict], models, test_sets: dict, lpips=None) -> list[dict]:
    """One row per run: its summary and, per test set, the mean Y-PSNR/SSIM of its ``best.pth`` (built with
    ``models``) on the contract's LR images — also for realistic-degradation runs, whose task differs."""
    from .checkpoint import load_generator
    from .evaluation import evaluate_methods, mean_rows, model_upscaler

    rows = []
    for r in runs:
        net = load_generator(r["path"] / "best.pth", models)
        means = mean_rows(evaluate_methods({"model": model_upscaler(net)}, test_sets, progress=False, lpips=lpips))
        rows.append({**{k: r[k] for k in ("name", "stage", "task", "changes", "note", "steps", "best_step",
                                          "best_val_psnr", "time_s", "val_split")},
                     "test": {m["set"]: (m["psnr"], m["ssim"], *([m["lpips"]] if "lpips" in m else []))
                              for m in means}})
    return rows


def write_attempts(rows: list[dict], out_dir) -> dict:
    """``<out_dir>/attempts.md`` and ``attempts.csv``: the report's table of attempts and improvements. Returns
    ``{"md": text, "paths": [...]}``."""
    from .files import atomic_write_bytes

    sets = list(dict.fromkeys(s for r in rows for s in r["test"]))
    lpips = any(len(v) == 3 for r in rows for v in r["test"].values())
    head = ["run", "stage", "task", "what changed", "best iteration", "val PSNR (dB)"] + \
        [f"{s} PSNR / SSIM" + (" / LPIPS" if lpips else "") for s in sets] + ["time (min)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table = []
    for r in rows:
        changed = "; ".join(x for x in (r["changes"], r["note"]) if x) or "(default run)"
        cells = [r["name"], r["stage"], r["task"], changed, str(r["best_step"]), f"{r['best_val_psnr']:.2f}"] + \
            [" / ".join([f"{r['test'][s][0]:.2f}", *(f"{v:.4f}" for v in r["test"][s][1:])]) if s in r["test"] else "-"
             for s in sets] + \
            [f"{r['time_s'] / 60:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
        table.append(dict(zip(head, cells)))
    note = ("\n\nValidation PSNR on the validation split (model selection); test PSNR/SSIM on Y, scale pixels "
            "shaved, with the benchmark's MATLAB-bicubic LR images. Runs marked *realistic degradation* were trained "
            "for another task (blurred, noisy, JPEG LR), so their benchmark scores are not a like-for-like comparison.")
    md = "\n".join(lines) + note + "\n"
    out = Path(out_dir)
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=head, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    atomic_write_bytes(out / "attempts.md", md.encode())
    atomic_write_bytes(out / "attempts.csv", buf.getvalue().encode())
    return {"md": md, "paths": [out / "attempts.md", out / "attempts.csv"]}


# --- notebook helpers -------------------------------------------------------------------------------------------

def train_variant(name: str, base, models, solver, progress: bool = True, **changes) -> dict:
    """Train a named variant of ``base`` (a :class:`~sr_utils.config.TrainConfig`) with ``changes`` (field names
    checked) into ``experiments/<name>/<stage>/`` (under ``.grading-run/`` while nbgrader runs the notebook).
    An SRGAN variant starts from ``experiments/<name>/srresnet/best.pth`` when that exists, else from the default
    run's SRResNet. Returns :func:`sr_utils.trainer.train`'s result. One line in a notebook::

        l1_run = train_variant("l1", srresnet_config, models, solver, pixel_loss="l1", note="L1 loss")
    """
    from dataclasses import fields, replace

    from .notebook import output_path
    from .trainer import train

    known = {f.name for f in fields(base)}
    wrong = sorted(set(changes) - known)
    if wrong:
        raise ValueError(tr("unknown setting(s) {wrong}; known: {known}", wrong=", ".join(wrong),
                            known=", ".join(sorted(known))))
    cfg = replace(base, **changes)
    out = output_path(run_dir(name, cfg.stage))
    if cfg.stage == "srgan" and not cfg.srresnet_checkpoint and not (out.parent / "srresnet" / "best.pth").is_file():
        cfg = replace(cfg, srresnet_checkpoint=str(output_path(f"{DEFAULT_ROOT}/srresnet/best.pth")))
    return train(cfg, out, models, solver, progress=progress)


def show_runs(names=(), folder=None):
    """The runs table (Markdown) and their validation curves (a Figure), for a notebook cell:
    ``display(*show_runs())``. ``names``: runs to show (``name`` or ``name/stage``; default all)."""
    from IPython.display import Markdown

    from .notebook import output_path

    runs = select(list_runs(folder if folder is not None else output_path(".")), list(names))
    return Markdown(runs_table(runs)), plot_runs(runs)


def evaluate_runs(names, models, test_sets, folder=None, out_dir=None) -> dict:
    """Score the chosen runs' ``best.pth`` on ``test_sets`` and write ``results/attempts.md``/``.csv`` and
    ``attempts_curves.png`` (handed in; under ``.grading-run/`` while grading). Returns :func:`write_attempts`'s
    result plus ``rows``."""
    from .notebook import output_path

    runs = select(list_runs(folder if folder is not None else output_path(".")), list(names))
    out = Path(out_dir) if out_dir is not None else output_path("results")
    rows = attempts_rows(runs, models, test_sets)
    written = write_attempts(rows, out)
    plot_runs(runs, path=out / "attempts_curves.png")
    return {**written, "rows": rows}
