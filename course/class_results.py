"""The class's results: each student's Set5 PSNR/SSIM recomputed from their submitted images, beside the numbers they
reported and their MOS, and the class's perception-distortion plot.

    python -m course.class_results superres             # course/submitted/, the study in course/studies/superres/
    python -m course.class_results superres --from DIR --study DIR --out DIR

PSNR/SSIM follow the kit's convention (``sr_utils.metrics.evaluate_sr``: Y channel, 4 px shaved, MATLAB SSIM), means
over the split's images. The reported numbers are the ``SRGAN`` row of the student's ``results/test_table.csv`` for
the same split (notebook 05 writes the SRGAN images to ``submission/set5/``, ``submission/samples/`` without Set5); a difference over 0.05 dB is flagged,
and so is a reported number that is not finite (``nan``, ``inf``). Every CSV cell is formula-safe.
The plot puts PSNR (distortion) against MOS (perception), with bicubic, the reference models and the HR as landmarks.
MOS is the study's bias-corrected MOS with its bootstrap interval (what the points come from; docs/mos.md).
Writes ``class_results.{csv,md,html}`` and ``perception_distortion.png`` (default ``course/grades/class_results/``).
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import textwrap
from html import escape
from pathlib import Path

import numpy as np

from course.grading.contract import GRADES_DIR, SUBMITTED_DIR
from course.mos.collect import MAX_FILE_BYTES, find_student_folders, read_images, reference_set
from course.paths import KIT_ROOT as REPO
from course.student_files import read_beneath

#: A reported PSNR further than this from the recomputed one is flagged.
TOLERANCE_DB = 0.05
FIELDS = ["student", "psnr", "ssim", "reported_psnr", "reported_ssim", "psnr_diff", "flag", "mos", "mos_ci_low",
          "mos_ci_high", "n_ratings", "note"]

__all__ = ["mean_scores", "reported_numbers", "class_table", "landmarks", "write_class_results", "main"]


def mean_scores(images: dict[str, np.ndarray], hr: dict[str, np.ndarray], scale: int) -> tuple[float, float]:
    """Mean (PSNR, SSIM) of ``{name: SR}`` against ``{name: HR}`` with :func:`sr_utils.metrics.evaluate_sr`."""
    from sr_utils.metrics import evaluate_sr

    scores = [evaluate_sr(images[n], hr[n], scale) for n in images]
    return float(np.mean([p for p, _ in scores])), float(np.mean([s for _, s in scores]))


def reported_numbers(notebook_dir: Path, split: str, methods=("SRGAN", "SRGAN-MSE")) -> tuple[float, float] | str:
    """(PSNR, SSIM) of the first of ``methods`` (the student's SRGAN, named SRGAN-MSE when trained without the VGG
    weights) on ``split`` in ``notebook_dir/results/test_table.csv``, or why there is none (the file is read like
    any student file: no link, size-capped)."""
    try:  # (no link followed at any level below the student's folder)
        text = read_beneath(notebook_dir, "results/test_table.csv", MAX_FILE_BYTES).decode("utf-8", "replace")
    except FileNotFoundError:
        return "no results/test_table.csv"
    except (OSError, ValueError) as e:
        return f"results/test_table.csv unreadable ({e})"
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r.get("set") == split and r.get("method") in methods]
    for method in methods:
        for row in rows:
            if row.get("method") == method:
                try:
                    return float(row["psnr"]), float(row["ssim"])
                except (TypeError, ValueError):
                    return f"results/test_table.csv: {split}/{method} row has no numbers"
    return f"results/test_table.csv has no {split}/{'|'.join(methods)} row"


def _mos_by_version(study_dir: Path | None) -> dict[str, dict]:
    if study_dir is None or not (Path(study_dir) / "study.json").is_file():
        return {}
    from course.mos.results import analyse
    from course.mos.study import load_study

    return {r["version"]: r for r in analyse(load_study(study_dir))["rows"]}


def class_table(src: Path, ref, study_dir: Path | None = None, assignment: str = "superres") -> list[dict]:
    """One row per student folder under ``src`` (``FIELDS``); a student whose images cannot be used gets a note."""
    import json

    split = json.loads(Path(ref.list_file).read_text())["split"]
    mos = _mos_by_version(study_dir)
    folders, rejected = find_student_folders(src, assignment, ref.folder)
    rows = [{**dict.fromkeys(FIELDS, ""), "student": s, "note": reason} for s, reason in rejected.items()]
    for student, folder in folders.items():
        row = {**dict.fromkeys(FIELDS, ""), "student": student}
        try:
            row["psnr"], row["ssim"] = mean_scores(read_images(folder, ref), ref.hr, ref.scale)
        except ValueError as e:
            row["note"] = str(e)
        reported = reported_numbers(folder.parent.parent, split)
        if isinstance(reported, str):
            row["note"] = "; ".join(x for x in (row["note"], reported) if x)
        else:
            row["reported_psnr"], row["reported_ssim"] = reported
            if not all(math.isfinite(v) for v in reported):  # nan/inf compare False with any tolerance
                row["flag"] = "NOT FINITE"
                row["note"] = "; ".join(x for x in (row["note"], "reported PSNR/SSIM is not a finite number") if x)
            elif row["psnr"] != "":
                row["psnr_diff"] = row["reported_psnr"] - row["psnr"]
                row["flag"] = "DIFFERS" if abs(row["psnr_diff"]) > TOLERANCE_DB else ""
        m = mos.get(f"student:{student}")
        if m and m["n"]:
            # the bias-corrected MOS the points come from (course/mos/model.py), with its bootstrap interval
            row.update(mos=m["model_mos"], mos_ci_low=m["model_low"], mos_ci_high=m["model_high"], n_ratings=m["n"])
        elif mos:
            row["note"] = "; ".join(x for x in (row["note"], "not in the MOS study") if x)
        rows.append(row)
    return sorted(rows, key=lambda r: r["student"])


def landmarks(ref, study_dir: Path | None = None) -> list[dict]:
    """Bicubic (PSNR from the reference split), the study's reference models (PSNR from their frozen images) and
    the HR (PSNR infinite), each with its MOS when the study rated it."""
    from course.mos.collect import bicubic

    mos = _mos_by_version(study_dir)
    bic = {n: bicubic(ref.lr[n], ref.scale) for n in ref.names}
    out = [{"name": "bicubic", "psnr": mean_scores(bic, ref.hr, ref.scale)[0],
            "mos": mos.get("control:bicubic", {}).get("model_mos", math.nan)}]
    if mos:
        from course.mos.study import load_study
        from sr_utils.color import load_rgb

        study = load_study(study_dir)
        for version in (v for v in study.meta["versions"] if v.startswith("reference:")):
            imgs = {it["image"]: load_rgb(study.folder / "images" / f"{i}.png")
                    for i, it in study.meta["items"].items() if it["version"] == version}
            out.append({"name": version.split(":", 1)[1], "psnr": mean_scores(imgs, ref.hr, ref.scale)[0],
                        "mos": mos[version]["model_mos"]})
    out.append({"name": "HR", "psnr": math.inf, "mos": mos.get("control:hr", {}).get("model_mos", math.nan)})
    return out


def plot(rows: list[dict], marks: list[dict], label: str, path: Path) -> Path:
    """PSNR (x) against MOS (y): students as dots with their MOS interval, landmarks as labelled squares; the HR
    (infinite PSNR) is a dashed line at its MOS. Students without MOS sit on the x axis (grey crosses)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    rated = [r for r in rows if r["psnr"] != "" and r["mos"] != ""]
    for r in rated:
        err = [[max(r["mos"] - r["mos_ci_low"], 0)], [max(r["mos_ci_high"] - r["mos"], 0)]]
        ax.errorbar(r["psnr"], r["mos"], yerr=err if not math.isnan(r["mos_ci_low"]) else None, fmt="o",
                    color="tab:blue", capsize=2, alpha=0.8)
        ax.annotate(r["student"], (r["psnr"], r["mos"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    unrated = [r for r in rows if r["psnr"] != "" and r["mos"] == ""]
    if unrated:
        ax.plot([r["psnr"] for r in unrated], [1.0] * len(unrated), "x", color="0.5", label="no MOS")
    for m in marks:
        if math.isinf(m["psnr"]):
            if not math.isnan(m["mos"]):
                ax.axhline(m["mos"], color="tab:green", ls="--", lw=1, label=f"HR (PSNR ∞), MOS {m['mos']:.2f}")
            continue
        y = m["mos"] if not math.isnan(m["mos"]) else 1.0
        ax.plot(m["psnr"], y, "s", color="tab:orange")
        ax.annotate(m["name"], (m["psnr"], y), fontsize=8, xytext=(3, -10), textcoords="offset points")
    ax.set_xlabel("PSNR (dB, Y, kit convention) → less distortion")
    ax.set_ylabel("MOS (1 bad … 5 excellent) → better perceived")
    ax.set_ylim(0.8, 5.2)
    ax.set_title(textwrap.fill(f"Perception–distortion, {label}", 80), fontsize=8)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def _cell(v, digits=2) -> str:
    if v == "" or v is None:
        return ""
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def write_class_results(rows: list[dict], marks: list[dict], label: str, out_dir: Path) -> dict[str, Path]:
    """``class_results.{csv,md,html}`` and ``perception_distortion.png`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"class_results.{k}" for k in ("csv", "md", "html")}
    paths["png"] = plot(rows, marks, label, out / "perception_distortion.png")
    from course.mos.csvsafe import write_csv

    write_csv(paths["csv"], [*FIELDS, "split"], ({**r, "split": label} for r in rows))  # formula-safe, atomic
    head = ["student", "PSNR", "SSIM", "reported PSNR", "reported SSIM", "diff (dB)", "flag", "MOS", "95 % CI", "note"]

    def cells(r):
        ci = f"{_cell(r['mos_ci_low'])}–{_cell(r['mos_ci_high'])}" if r["mos"] != "" else ""
        return [r["student"], _cell(r["psnr"]), _cell(r["ssim"], 4), _cell(r["reported_psnr"]),
                _cell(r["reported_ssim"], 4), _cell(r["psnr_diff"], 3), r["flag"], _cell(r["mos"]), ci, r["note"]]

    from sr_utils.metrics import CONVENTION

    note = f"Images: {label}. PSNR/SSIM: {CONVENTION.format(scale=4)}. Reported PSNR flagged beyond {TOLERANCE_DB} dB."
    marks_txt = "; ".join(f"{m['name']}: PSNR {_cell(m['psnr'])}, MOS {_cell(m['mos'])}" for m in marks)
    md = [f"# Class results — {label}", "", note, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in rows]
    md += ["", f"Landmarks: {marks_txt}.", "", f"![perception-distortion]({paths['png'].name})"]
    paths["md"].write_text("\n".join(md) + "\n")
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells(r)) + "</tr>" for r in rows)
    paths["html"].write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Class results</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:70rem;margin:1rem auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
        f"<h1>Class results</h1><p>{escape(note)}</p><img src='{escape(paths['png'].name)}' alt='perception-"
        f"distortion plot'><table><tr>{''.join(f'<th>{escape(h)}</th>' for h in head)}</tr>{body}</table>"
        f"<p>Landmarks: {escape(marks_txt)}.</p></body></html>")
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course.class_results", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("assignment", help="assignment name (superres)")
    ap.add_argument("--course-dir", type=Path, default=REPO, help="course root (holds course/submitted/)")
    ap.add_argument("--from", dest="src", type=Path, help="FOLDER/<student>/[superres/]submission/{set5,samples}/*.png")
    ap.add_argument("--study", type=Path, help="MOS study folder (default course/studies/<assignment>/)")
    ap.add_argument("--data-dir", type=Path, help="prepared data folder (default: the kit's data folder)")
    ap.add_argument("--out", type=Path, help="output folder (default course/grades/class_results/)")
    args = ap.parse_args(argv)
    from course.mos.study import default_study_folder

    src = args.src or args.course_dir / SUBMITTED_DIR
    study = args.study or default_study_folder(args.course_dir, args.assignment)
    try:
        ref = reference_set(args.data_dir)
        rows = class_table(src, ref, study, args.assignment)
        marks = landmarks(ref, study)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = write_class_results(rows, marks, ref.label, args.out or args.course_dir / GRADES_DIR /
                                "class_results")
    print(paths["md"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
