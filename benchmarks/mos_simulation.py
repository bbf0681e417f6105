"""The MOS study against careless and hostile raters, on simulated peer-rated classes (course/mos/simulate.py).

    .venv/bin/python benchmarks/mos_simulation.py [--students 100] [--seeds 5]

Prints, per seed: which planted raters were flagged, honest raters flagged by mistake, the Spearman correlation
of the students' model MOS with their true quality, the largest change of any student's points when one kept rater
is removed, what each planted rater would move had screening missed them, and the raters' load.
"""
from __future__ import annotations

import argparse
import time

from course.mos.analysis import AnalysisConfig
from course.mos.model import ModelConfig
from course.mos.simulate import SimConfig, run_simulation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--resamples", type=int, default=200)
    args = ap.parse_args()
    print("| seed | planted flagged | honest flagged | Spearman (model / raw) | max one-rater change | "
          "unscreened: saboteur / straight-liner / clicker / colluder | colluder's friend (kept / all) | "
          "CI width (model / raw) | images per rater | time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in range(args.seeds):
        t = time.perf_counter()
        r = run_simulation(SimConfig(students=args.students, seed=seed),
                           AnalysisConfig(model=ModelConfig(resamples=args.resamples, seed=seed)))
        u = r["unscreened_influence"]
        print(f"| {seed} | {len(r['planted_flagged'])}/4 | {len(r['honest_flagged'])} | "
              f"{r['spearman_model']:.3f} / {r['spearman_raw']:.3f} | {r['max_loo_change']:.2f} of "
              f"{r['max_points']:g} | {u['saboteur']:.2f} / {u['straightliner']:.2f} / {u['clicker']:.2f} / "
              f"{u['colluder']:.2f} | {r['friend_points_kept']:.2f} / {r['friend_points_everyone']:.2f} | "
              f"{r['ci_width_model']:.2f} / {r['ci_width_raw']:.2f} | {r['min_items_per_rater']}–"
              f"{r['max_items_per_rater']} | {time.perf_counter() - t:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
