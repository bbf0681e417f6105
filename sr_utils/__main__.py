"""Command line of the kit: ``python -m sr_utils <command>`` (console script ``sr-kit``)."""
from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    from data_tools.samples import SAMPLE_TEST, load_sample_photo

    from .evaluate import bicubic_baseline, convention_note, markdown_table

    print(f"Bicubic x{args.scale} baseline on the bundled test photos (offline, MATLAB-exact imresize):\n")
    images = {name: load_sample_photo(name) for name in SAMPLE_TEST}
    rows = bicubic_baseline(images, scale=args.scale)
    print(markdown_table(rows, ["image", "psnr", "ssim"], caption=convention_note(args.scale)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sr-kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="the main job on the bundled sample data (offline)")
    p.add_argument("--scale", type=int, default=4, help="SR factor (default 4)")
    p.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
