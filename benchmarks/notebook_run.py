"""Benchmark: the five notebooks run as a student runs them, with the reference answers, on the bundled photos.

Copies ``source/superres/*.ipynb`` into a fresh folder without their hidden tests (so: the release's cells with the
reference solution in place, as a student who solved everything has them) and executes them in order with nbclient, outside nbgrader (so notebook 03 trains with this machine's default
profile: ``cpu-small`` on a CPU). Prints the wall time of each notebook and the table notebook 04 wrote, with the
SRResNet's gain over bicubic on the same images — the figure the course promises students (≥ +0.5 dB on a CPU,
notebook 03 within 10 minutes).

    .venv/bin/python benchmarks/notebook_run.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_models", "02_solver", "03_train", "04_test", "05_super_resolution"]


def without_hidden_tests(notebook_json: str) -> str:
    """The notebook with every ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` block removed."""
    import json
    import re

    nb = json.loads(notebook_json)
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = re.sub(r"\n?### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", "\n", src, flags=re.S)
    return json.dumps(nb)


def run(folder: Path, timeout: int = 3600) -> dict[str, float]:
    """Execute the notebooks of ``folder`` in order; ``{notebook: seconds}``. Raises on the first failing cell."""
    import nbformat
    from nbclient import NotebookClient

    times = {}
    env_backup = os.environ.pop("NBGRADER_EXECUTION", None)
    try:
        for name in NOTEBOOKS:
            path = folder / f"{name}.ipynb"
            nb = nbformat.read(path, as_version=4)
            t0 = time.perf_counter()
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(folder)}}).execute()
            times[name] = time.perf_counter() - t0
            nbformat.write(nb, path)
            print(f"{name}: {times[name]:.0f} s", flush=True)
    finally:
        if env_backup is not None:
            os.environ["NBGRADER_EXECUTION"] = env_backup
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it (default: a temporary one)")
    args = ap.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="sr_notebook_run_"))
    folder.mkdir(parents=True, exist_ok=True)
    for nb in NOTEBOOKS:
        text = (REPO / "source" / "superres" / f"{nb}.ipynb").read_text()
        (folder / f"{nb}.ipynb").write_text(without_hidden_tests(text))
    try:
        times = run(folder)
        rows = list(csv.DictReader(open(folder / "results" / "test_table.csv")))
        print("\nnotebook 04's table (results/test_table.csv):")
        for r in rows:
            print(f"  {r['set']:14s} {r['method']:10s} {float(r['psnr']):6.2f} dB  {float(r['ssim']):.4f}")
        for set_name in dict.fromkeys(r["set"] for r in rows):
            psnr = {r["method"]: float(r["psnr"]) for r in rows if r["set"] == set_name}
            gan = next(m for m in psnr if m.startswith("SRGAN"))  # SRGAN, or SRGAN-MSE without VGG weights
            print(f"{set_name}: SRResNet {psnr['SRResNet'] - psnr['bicubic']:+.2f} dB over bicubic, "
                  f"{gan} {psnr[gan] - psnr['bicubic']:+.2f} dB")
        print(f"notebook 03 (training): {times['03_train'] / 60:.1f} min; all five: {sum(times.values()) / 60:.1f} min")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
