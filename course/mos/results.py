"""A study's results: MOS per student with its interval, the controls, rater consistency, agreement; CSV, Markdown,
an HTML page and a plot.

Every output names the evaluation split (Set5, or the bundled sample photos when Set5 is not prepared) and how the
intervals are computed (:data:`course.mos.stats.CI_METHOD`).
"""
from __future__ import annotations

import csv
import math
import textwrap
from html import escape
from pathlib import Path

import numpy as np

from course.mos.stats import CI_METHOD, krippendorff_alpha, mean_ci, rater_consistency
from course.mos.store import AnswerStore
from course.mos.study import CONTROLS, Study

__all__ = ["analyse", "write_results", "FIELDS"]

FIELDS = ["version", "kind", "name", "mos", "ci_low", "ci_high", "sd", "n", "raters"]


def analyse(study: Study, exclude: list[str] | tuple = (), min_gap: float = 1.0) -> dict:
    """The numbers of ``study``'s answers so far, without the raters in ``exclude``.

    Returns ``{"rows": [...], "consistency": {...}, "alpha": float, "excluded": [...], "progress": {...},
    "n_ratings": int}``; a row per version (``FIELDS``), students first by MOS, then references, then controls.
    """
    unknown = sorted(set(exclude) - set(study.meta["raters"]))
    if unknown:
        raise ValueError(f"--exclude names no rater of this study: {', '.join(unknown)} "
                         f"(raters: {', '.join(study.meta['raters'])})")
    items = study.meta["items"]
    answers = [(r, i, s) for r, i, s in AnswerStore(study.db_path).all_answers() if i in items]
    consistency = rater_consistency(((r, items[i]["version"], s) for r, i, s in answers), min_gap=min_gap)
    kept = [(r, i, s) for r, i, s in answers if r not in set(exclude)]
    by_version: dict[str, list[int]] = {v: [] for v in study.meta["versions"]}
    raters_of: dict[str, set] = {v: set() for v in study.meta["versions"]}
    for r, i, s in kept:
        by_version[items[i]["version"]].append(s)
        raters_of[items[i]["version"]].add(r)
    rows = []
    for version, scores in by_version.items():
        kind, _, name = version.partition(":")
        rows.append({"version": version, "kind": kind, "name": name, **mean_ci(scores),
                     "raters": len(raters_of[version])})
    order = {"student": 0, "reference": 1, "control": 2}
    rows.sort(key=lambda r: (order[r["kind"]], -r["mos"] if not math.isnan(r["mos"]) else math.inf, r["name"]))
    units: dict[str, list[int]] = {}
    for _, i, s in kept:
        units.setdefault(i, []).append(s)
    progress = {r: {"answered": 0, "total": len(o)} for r, o in study.meta["orders"].items()}
    for r, _, _ in answers:
        progress[r]["answered"] += 1
    return {"rows": rows, "consistency": consistency, "alpha": krippendorff_alpha(units, "ordinal"),
            "excluded": sorted(exclude), "progress": progress, "n_ratings": len(kept), "min_gap": min_gap,
            "split": study.meta["split"]}


def _fmt(x, digits=2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _inconsistent(a: dict) -> list[str]:
    return [r for r, c in a["consistency"].items() if c["consistent"] is False]


def markdown(a: dict) -> str:
    """The results as Markdown (tables + notes)."""
    lines = [f"# Human evaluation (MOS) — {a['split']}", "",
             f"{a['n_ratings']} ratings; scores 1 (bad) … 5 (excellent). {CI_METHOD}.", "",
             "| version | MOS | 95 % CI | sd | ratings | raters |", "|---|---:|---|---:|---:|---:|"]
    for r in a["rows"]:
        lines.append(f"| {r['version']} | {_fmt(r['mos'])} | {_fmt(r['ci_low'])}–{_fmt(r['ci_high'])} | "
                     f"{_fmt(r['sd'])} | {r['n']} | {r['raters']} |")
    alpha = a["alpha"]
    lines += ["", f"Inter-rater agreement: Krippendorff's alpha (ordinal) = {_fmt(alpha, 3)} "
              "(1 = perfect agreement, 0 = chance; items are the units, raters the observers).", "",
              f"## Raters (consistent when their HR-control mean exceeds their NN-control mean by ≥ {a['min_gap']:g})",
              "", "| rater | answered | HR mean | NN mean | consistent |", "|---|---:|---:|---:|---|"]
    for rater, p in a["progress"].items():
        c = a["consistency"].get(rater, {"hr_mean": math.nan, "nn_mean": math.nan, "consistent": None})
        flag = {True: "yes", False: "**no**", None: "unknown"}[c["consistent"]]
        excluded = " (excluded)" if rater in a["excluded"] else ""
        lines.append(f"| {rater}{excluded} | {p['answered']}/{p['total']} | {_fmt(c['hr_mean'])} | "
                     f"{_fmt(c['nn_mean'])} | {flag} |")
    bad = [r for r in _inconsistent(a) if r not in a["excluded"]]
    if bad:
        lines += ["", f"Inconsistent raters (rerun with `--exclude {' --exclude '.join(bad)}` to leave them out): "
                  + ", ".join(bad)]
    return "\n".join(lines) + "\n"


def plot(a: dict, path: Path) -> Path:
    """MOS with its 95 % interval per version (students blue, references orange, controls grey) as a PNG."""
    from matplotlib.figure import Figure

    rows = [r for r in a["rows"] if r["n"]]
    fig = Figure(figsize=(7, 0.35 * len(rows) + 1.4))
    ax = fig.subplots()
    colours = {"student": "tab:blue", "reference": "tab:orange", "control": "0.5"}
    y = np.arange(len(rows))[::-1]
    for yy, r in zip(y, rows):
        lo, hi = r["ci_low"], r["ci_high"]
        err = None if math.isnan(lo) else [[r["mos"] - lo], [hi - r["mos"]]]
        ax.errorbar(r["mos"], yy, xerr=err, fmt="o", color=colours[r["kind"]], capsize=3)
    ax.set_yticks(y, [r["version"] for r in rows], fontsize=8)
    ax.set_xlim(0.8, 5.2)
    ax.set_xlabel("MOS (1 = bad … 5 = excellent), 95 % CI")
    ax.set_title(textwrap.fill(f"Human evaluation — {a['split']}", 90), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def html_page(a: dict, plot_name: str) -> str:
    """A self-contained HTML page (the plot beside it), every value escaped."""
    rows = "".join(
        f"<tr><td>{escape(r['version'])}</td><td>{_fmt(r['mos'])}</td><td>{_fmt(r['ci_low'])}–{_fmt(r['ci_high'])}"
        f"</td><td>{r['n']}</td><td>{r['raters']}</td></tr>" for r in a["rows"])
    raters = "".join(
        f"<tr><td>{escape(rater)}{' (excluded)' if rater in a['excluded'] else ''}</td><td>{p['answered']}/"
        f"{p['total']}</td><td>{_fmt(a['consistency'].get(rater, {}).get('gap', math.nan))}</td><td>"
        f"{ {True: 'yes', False: 'NO', None: 'unknown'}[a['consistency'].get(rater, {}).get('consistent')]}</td></tr>"
        for rater, p in a["progress"].items())
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>MOS results</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}</style>"
            f"</head><body><h1>Human evaluation (MOS)</h1><p id='split'>Images: {escape(a['split'])}. "
            f"{a['n_ratings']} ratings. {escape(CI_METHOD)}.</p>"
            f"<img src='{escape(plot_name)}' alt='MOS per version' style='max-width:100%'>"
            "<table id='mos'><tr><th>version</th><th>MOS</th><th>95 % CI</th><th>ratings</th><th>raters</th></tr>"
            f"{rows}</table><p id='alpha'>Krippendorff's alpha (ordinal): {_fmt(a['alpha'], 3)}</p>"
            f"<h2>Raters</h2><p>Consistent: HR − NN control means ≥ {a['min_gap']:g}.</p><table id='raters'>"
            f"<tr><th>rater</th><th>answered</th><th>HR − NN</th><th>consistent</th></tr>{raters}</table>"
            "</body></html>")


def write_results(a: dict, out_dir: Path) -> dict[str, Path]:
    """``mos.csv``, ``raters.csv``, ``mos.md``, ``mos.html`` and ``mos.png`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "mos.csv", "raters": out / "raters.csv", "md": out / "mos.md", "html": out / "mos.html",
             "png": out / "mos.png"}
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*FIELDS, "split"])
        w.writeheader()
        w.writerows({**{k: r[k] for k in FIELDS}, "split": a["split"]} for r in a["rows"])
    with open(paths["raters"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rater", "answered", "total", "hr_mean", "nn_mean", "gap", "consistent", "excluded"])
        for rater, p in a["progress"].items():
            c = a["consistency"].get(rater, {})
            w.writerow([rater, p["answered"], p["total"], c.get("hr_mean", ""), c.get("nn_mean", ""),
                        c.get("gap", ""), c.get("consistent", ""), rater in a["excluded"]])
    paths["md"].write_text(markdown(a))
    plot(a, paths["png"])
    paths["html"].write_text(html_page(a, paths["png"].name))
    return paths


def controls_in_order(a: dict) -> bool:
    """True when the controls' MOS rank HR > bicubic > NN (what a sound study shows)."""
    mos = {r["version"]: r["mos"] for r in a["rows"]}
    hr, bic, nn = (mos.get(c, math.nan) for c in reversed(CONTROLS))
    return hr > bic > nn
