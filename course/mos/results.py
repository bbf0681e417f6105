"""A study's results: per version the bias-corrected MOS (subject model) with its bootstrap interval beside the raw
mean, the points, the leave-one-rater-out check, the screening of every rater with its reasons; CSV, Markdown, an HTML
page and a plot.

Every output names the evaluation split (Set5, or the bundled sample photos when Set5 is not prepared) and how the
intervals are computed (:data:`CI_METHOD`). Flagged raters are left out unless put back with ``keep``.
"""
from __future__ import annotations

import math
import textwrap
from html import escape
from pathlib import Path

import numpy as np

from course.mos.analysis import AnalysisConfig, build_table, estimate, leave_one_out
from course.mos.csvsafe import write_csv
from course.mos.model import ModelConfig
from course.mos.screening import ScreeningConfig, screen_raters
from course.mos.stats import krippendorff_alpha
from course.mos.store import AnswerStore
from course.mos.study import CONTROLS, Study

__all__ = ["analyse", "write_results", "FIELDS", "CI_METHOD"]

FIELDS = ["version", "kind", "name", "model_mos", "model_low", "model_high", "mos", "ci_low", "ci_high", "sd", "n",
          "raters", "points", "loo_change", "loo_rater", "hinges"]
#: One line saying how the intervals are computed, printed under every table.
CI_METHOD = ("MOS: maximum-likelihood subject model (rater bias and inconsistency, ITU-T P.910); 95 % intervals: "
             "bootstrap over raters and images (2.5–97.5 percentiles); raw mean beside it")


def analyse(study: Study, exclude: list[str] | tuple = (), min_gap: float = 1.0, keep: list[str] | tuple = (),
            max_points: float = 4.0, resamples: int = 200) -> dict:
    """The numbers of ``study``'s answers so far. Raters flagged by the screening are left out unless named in
    ``keep``; raters in ``exclude`` are left out too.

    Returns ``{"rows": [...], "screening": {rater: {...}}, "consistency": {...}, "alpha": float, "excluded": [...],
    "flagged": [...], "progress": {...}, "n_ratings": int, ...}``; a row per version (``FIELDS``), students first by
    model MOS, then references, then controls.
    """
    names = set(study.meta["raters"])
    for option, given in (("--exclude", exclude), ("--keep", keep)):
        unknown = sorted(set(given) - names)
        if unknown:
            raise ValueError(f"{option} names no rater of this study: {', '.join(unknown)} "
                             f"(raters: {', '.join(study.meta['raters'])})")
    if study.meta.get("mode") == "pairwise":
        from course.mos.pairwise_analysis import analyse_pairwise

        return analyse_pairwise(study, exclude, keep, max_points, resamples)
    items = study.meta["items"]
    answers = [(r, i, s) for r, i, s in AnswerStore(study.db_path).all_answers() if i in items]
    table = build_table(study.meta, answers)
    screen = screen_raters(table.x, table.raters, table.item_version, table.repeats, ScreeningConfig(min_gap=min_gap))
    flagged = sorted(r for r, st in screen.items() if st["flags"] and table.raters and r in names)
    left_out = (set(flagged) - set(keep)) | set(exclude)
    cfg = AnalysisConfig(model=ModelConfig(resamples=resamples), max_points=max_points)
    versions = list(study.meta["versions"])
    est = estimate(table, versions, left_out, cfg)
    loo = leave_one_out(table, versions, left_out, cfg)
    rows = []
    for version in versions:
        kind, _, name = version.partition(":")
        e = est[version]
        lo = loo.get(version, {"max_change": math.nan, "rater": None, "hinges": False})
        rows.append({"version": version, "kind": kind, "name": name, **{k: e[k] for k in (
            "model_mos", "model_low", "model_high", "mos", "ci_low", "ci_high", "sd", "n", "raters", "points")},
            "loo_change": lo["max_change"], "loo_rater": lo["rater"] or "", "hinges": lo["hinges"]})
    order = {"student": 0, "reference": 1, "control": 2}
    rows.sort(key=lambda r: (order[r["kind"]], -r["model_mos"] if not math.isnan(r["model_mos"]) else math.inf,
                             r["name"]))
    kept = [(r, i, s) for r, i, s in answers if r not in left_out and "repeat_of" not in items[i]
            and items[i]["version"] in set(versions)]
    units: dict[str, list[int]] = {}
    for _, i, s in kept:
        units.setdefault(i, []).append(s)
    progress = {r: {"answered": 0, "total": len(o)} for r, o in study.meta["orders"].items()}
    for r, _, _ in answers:
        progress[r]["answered"] += 1
    consistency = {r: {"hr_mean": st["hr_mean"], "nn_mean": st["nn_mean"], "gap": st["gap"],
                       "consistent": None if math.isnan(st["gap"]) else bool(st["gap"] >= min_gap)}
                   for r, st in screen.items()}
    for r, st in screen.items():
        st.update(est["_fit"].get(r, {"bias": math.nan, "inconsistency": math.nan}))
    return {"rows": rows, "screening": screen, "consistency": consistency, "alpha": krippendorff_alpha(units),
            "excluded": sorted(left_out), "flagged": flagged, "kept_back": sorted(set(keep)),
            "progress": progress, "n_ratings": sum(1 for r, _, _ in table.raw if r not in left_out),
            "min_gap": min_gap, "max_points": max_points, "split": study.meta["split"], "mode": "rating"}


def _fmt(x, digits=2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


#: How the numbers of a pairwise study are computed.
PAIRWISE_METHOD = ("pairwise mode: Bradley–Terry scores of the comparisons, mapped so the nearest-neighbour control "
                   "is 1 and the HR original 5; 95 % intervals: bootstrap over raters and images; a rating is a "
                   "comparison, no raw mean")


def _method(a: dict) -> str:
    return PAIRWISE_METHOD if a.get("mode") == "pairwise" else CI_METHOD


def _status(a: dict, rater: str) -> str:
    if rater in a["excluded"]:
        return "left out (flagged)" if rater in a["flagged"] else "left out (--exclude)"
    return "put back (--keep)" if rater in a["kept_back"] else "kept"


def _hinge_note(a: dict) -> str:
    limit = 0.1 * a["max_points"]
    return (f"Leave-one-rater-out: the largest change of a student's points when any one kept rater is removed; "
            f"**hinges** when over {limit:.2f} points (10 % of {a['max_points']:g}): check that student's ratings.")


def markdown(a: dict) -> str:
    """The results as Markdown (tables + notes)."""
    lines = [f"# Human evaluation (MOS) — {a['split']}", "",
             f"{a['n_ratings']} ratings kept; scores 1 (bad) … 5 (excellent). {_method(a)}.", "",
             "| version | MOS (model) | 95 % CI | raw mean | 95 % CI | ratings | raters | points | one-rater change |",
             "|---|---:|---|---:|---|---:|---:|---:|---|"]
    for r in a["rows"]:
        student = r["kind"] == "student"
        loo = (f"{_fmt(r['loo_change'])}{' **hinges**' if r['hinges'] else ''}" if student else "")
        lines.append(f"| {r['version']} | {_fmt(r['model_mos'])} | {_fmt(r['model_low'])}–{_fmt(r['model_high'])} | "
                     f"{_fmt(r['mos'])} | {_fmt(r['ci_low'])}–{_fmt(r['ci_high'])} | {r['n']} | {r['raters']} | "
                     f"{_fmt(r['points']) if student else ''} | {loo} |")
    lines += ["", _hinge_note(a), "",
              f"Inter-rater agreement: Krippendorff's alpha (ordinal) = {_fmt(a['alpha'], 3)} "
              "(1 = perfect agreement, 0 = chance; items are the units, raters the observers).", "",
              "## Raters", "", "Screening (docs/mos.md, \"What each flag means\"): gold items, repeated items, "
              "straight-lining, disagreement with the panel, favouritism. Flagged raters are left out; "
              "`--keep RATER` puts one back.", "",
              "| rater | answered | HR mean | NN mean | bias | inconsistency | status | reasons |",
              "|---|---:|---:|---:|---:|---:|---|---|"]
    for rater, p in a["progress"].items():
        st = a["screening"].get(rater, {})
        reasons = "; ".join(st.get("flags", [])).replace("|", "/")
        lines.append(f"| {rater} | {p['answered']}/{p['total']} | {_fmt(st.get('hr_mean', math.nan))} | "
                     f"{_fmt(st.get('nn_mean', math.nan))} | {_fmt(st.get('bias', math.nan))} | "
                     f"{_fmt(st.get('inconsistency', math.nan))} | {_status(a, rater)} | {reasons} |")
    if a["flagged"]:
        lines += ["", f"Flagged and left out: {', '.join(r for r in a['flagged'] if r in a['excluded'])}"
                  f" (rerun with `--keep RATER` to put one back)."]
    return "\n".join(lines) + "\n"


def plot(a: dict, path: Path) -> Path:
    """Model MOS with its 95 % bootstrap interval per version (students blue, references orange, controls grey) and
    the raw mean (hollow) as a PNG."""
    from matplotlib.figure import Figure

    rows = [r for r in a["rows"] if r["n"]]
    fig = Figure(figsize=(7, 0.35 * len(rows) + 1.4))
    ax = fig.subplots()
    colours = {"student": "tab:blue", "reference": "tab:orange", "control": "0.5"}
    y = np.arange(len(rows))[::-1]
    for yy, r in zip(y, rows):
        lo, hi, m = r["model_low"], r["model_high"], r["model_mos"]
        err = None if math.isnan(lo) else [[max(m - lo, 0)], [max(hi - m, 0)]]
        ax.errorbar(m, yy, xerr=err, fmt="o", color=colours[r["kind"]], capsize=3)
        ax.plot(r["mos"], yy, "o", mfc="none", color=colours[r["kind"]], alpha=0.6)
    ax.set_yticks(y, [r["version"] for r in rows], fontsize=8)
    ax.set_xlim(0.8, 5.2)
    ax.set_xlabel("MOS (1 = bad … 5 = excellent): model, 95 % bootstrap CI; hollow: raw mean")
    ax.set_title(textwrap.fill(f"Human evaluation — {a['split']}", 90), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def html_page(a: dict, plot_name: str) -> str:
    """A self-contained HTML page (the plot beside it), every value escaped."""
    def row(r):
        student = r["kind"] == "student"
        hinge = " <strong class='hinges'>hinges</strong>" if r["hinges"] else ""
        return (f"<tr><td>{escape(r['version'])}</td><td>{_fmt(r['model_mos'])}</td><td>{_fmt(r['model_low'])}–"
                f"{_fmt(r['model_high'])}</td><td>{_fmt(r['mos'])}</td><td>{_fmt(r['ci_low'])}–{_fmt(r['ci_high'])}"
                f"</td><td>{r['n']}</td><td>{r['raters']}</td><td>{_fmt(r['points']) if student else ''}</td>"
                f"<td>{(_fmt(r['loo_change']) + hinge) if student else ''}</td></tr>")

    def rater_row(rater, p):
        st = a["screening"].get(rater, {})
        reasons = "".join(f"<li>{escape(f)}</li>" for f in st.get("flags", []))
        return (f"<tr><td>{escape(rater)}</td><td>{p['answered']}/{p['total']}</td>"
                f"<td>{_fmt(st.get('gap', math.nan))}</td><td>{_fmt(st.get('bias', math.nan))}</td>"
                f"<td>{_fmt(st.get('inconsistency', math.nan))}</td><td class='status'>{escape(_status(a, rater))}"
                f"</td><td><ul>{reasons}</ul></td></tr>")

    rows = "".join(row(r) for r in a["rows"])
    raters = "".join(rater_row(rater, p) for rater, p in a["progress"].items())
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>MOS results</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:70rem;margin:1rem auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child,td:last-child"
            "{text-align:left}.hinges{color:#b00}ul{margin:0;padding-left:1rem}</style>"
            f"</head><body><h1>Human evaluation (MOS)</h1><p id='split'>Images: {escape(a['split'])}. "
            f"{a['n_ratings']} ratings kept. {escape(_method(a))}.</p>"
            f"<img src='{escape(plot_name)}' alt='MOS per version' style='max-width:100%'>"
            "<table id='mos'><tr><th>version</th><th>MOS (model)</th><th>95 % CI</th><th>raw mean</th><th>95 % CI</th>"
            "<th>ratings</th><th>raters</th><th>points</th><th>one-rater change</th></tr>"
            f"{rows}</table><p id='loo'>{escape(_hinge_note(a).replace('**', ''))}</p>"
            f"<p id='alpha'>Krippendorff's alpha (ordinal): {_fmt(a['alpha'], 3)}</p>"
            "<h2>Raters</h2><p>Flagged raters are left out; <code>--keep RATER</code> puts one back. What each flag "
            "means: docs/mos.md.</p><table id='raters'><tr><th>rater</th><th>answered</th><th>HR − NN</th>"
            f"<th>bias</th><th>inconsistency</th><th>status</th><th>reasons</th></tr>{raters}</table>"
            "</body></html>")


RATER_FIELDS = ["rater", "answered", "total", "status", "flagged", "reasons", "hr_mean", "nn_mean", "gap",
                "gold_error", "variance", "student_variance", "retest", "correlation", "student_shift", "shift_z",
                "max_version_shift", "bias", "inconsistency", "consistent", "excluded"]


def write_results(a: dict, out_dir: Path) -> dict[str, Path]:
    """``mos.csv``, ``raters.csv``, ``mos.md``, ``mos.html`` and ``mos.png`` in ``out_dir`` (CSV formula-safe)."""
    from sr_utils.files import atomic_write_bytes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "mos.csv", "raters": out / "raters.csv", "md": out / "mos.md", "html": out / "mos.html",
             "png": out / "mos.png"}
    write_csv(paths["csv"], [*FIELDS, "split"], ({**r, "split": a["split"]} for r in a["rows"]))
    rater_rows = []
    for rater, p in a["progress"].items():
        st = a["screening"].get(rater, {})
        rater_rows.append({**{k: st.get(k, "") for k in RATER_FIELDS}, "rater": rater, "answered": p["answered"],
                           "total": p["total"], "status": _status(a, rater), "flagged": bool(st.get("flags")),
                           "reasons": "; ".join(st.get("flags", [])),
                           "consistent": a["consistency"].get(rater, {}).get("consistent", ""),
                           "excluded": rater in a["excluded"]})
    write_csv(paths["raters"], RATER_FIELDS, rater_rows)
    atomic_write_bytes(paths["md"], markdown(a).encode())
    plot(a, paths["png"])
    atomic_write_bytes(paths["html"], html_page(a, paths["png"].name).encode())
    return paths


def controls_in_order(a: dict) -> bool:
    """True when the controls' model MOS rank HR > bicubic > NN (what a sound study shows)."""
    mos = {r["version"]: r["model_mos"] for r in a["rows"]}
    nn, bic, hr = (mos.get(c, math.nan) for c in CONTROLS)
    return hr > bic > nn
