"""The instructor's command line: ``python -m course <command>``.

    demo            the whole story on the bundled photos, offline (``make demo``): train, evaluate, pictures,
                    report, release, and the reference solution graded by ``python -m course.grade``
    train-srresnet, train-srgan, evaluate, super-resolve, report, runs, attempts, benchmark-inference, gpu-check
                    the kit's commands (``python -m sr_utils``), with the reference solution rebuilt from
                    source/superres as the default --models/--solver (``gpu-check``: the TA's check of a GPU machine)

Grading has its own command: ``python -m course.grade superres`` (``make grade``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _demo(args, default_modules) -> int:
    from .demo import run_demo

    s = run_demo(args.out, data_dir=args.data_dir, grade=not args.no_grading, study=not args.no_study)
    print(f"\nDemo finished in {s['seconds'] / 60:.1f} min. Everything is in {s['out_dir']}:")
    print(f"  srresnet/ srgan/   checkpoints, log.csv, curves.png (best.pth chosen on {s['val_split']}: "
          f"{s['srresnet']:.2f} dB)")
    print(f"  eval/              table.md .csv .tex, per_image.csv (SRResNet {s['gain_db']:+.2f} dB over bicubic)")
    print("  comparison.png     bicubic / SRResNet / SRGAN-MSE / HR with zoomed crops")
    print("  submission/samples/ SR images for the human evaluation (submission/set5/ when Set5 is prepared)")
    print("  report.md          the report, filled")
    if s.get("mos_html"):
        print(f"  mos/               a MOS study answered by scripted raters; results page {s['mos_html']}")
    if s.get("grades"):
        g = s["grades"]
        print(f"  grading/           release built, reference graded by python -m course.grade "
              f"({'sandboxed' if g['sandboxed'] else 'WITHOUT the sandbox'}): {g['points']:g} / {g['max_points']:g} "
              f"autograded points; {g['grades_csv']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from sr_utils.__main__ import build_parser
    from sr_utils.__main__ import main as kit_main

    from .reference import load_reference

    parser = build_parser(prog="python -m course", description=__doc__)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.add_parser("demo", help="the main job on the bundled sample data (offline)")
    p.add_argument("--out", type=Path, default=Path("outputs/demo"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--no-grading", action="store_true", help="skip building the release and autograding")
    p.add_argument("--no-study", action="store_true", help="skip the scripted MOS study at the end")
    p.set_defaults(func=_demo)
    return kit_main(argv, default_modules=load_reference, parser=parser)


if __name__ == "__main__":
    sys.exit(main())
