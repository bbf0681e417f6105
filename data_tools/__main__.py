"""Data command line of the kit: ``python -m data_tools <command>`` (console script ``sr-data``).

Commands: ``download`` (DIV2K and the benchmark pack), ``prepare`` (lists, pair checks, missing LR, decoded
cache), ``samples`` (the bundled offline dataset). The data folder is ``--data-dir`` or ``$SR_DATA_DIR``
(default: ``<project root>/data``, else ``./data``).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# command -> module in data_tools providing ``add_arguments(parser)`` and ``run(args) -> int``
COMMANDS = {
    "download": ("data_tools.download", "download DIV2K and the benchmark pack (resumable, checksummed)"),
    "prepare": ("data_tools.prepare", "scan a data folder, check LR/HR pairs, write lists, build the decoded cache"),
    "samples": ("data_tools.samples", "build the bundled offline dataset from photos shipped in installed wheels"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sr-data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--data-dir", type=Path, default=None,
                       help="data folder (default: $SR_DATA_DIR, else <project root>/data, else ./data)")
        mod = importlib.import_module(module)
        mod.add_arguments(p)
        p.set_defaults(run=mod.run)
    args = parser.parse_args(argv)
    if args.data_dir is None:  # the same default as the notebooks and the training commands
        from sr_utils.lists import default_data_dir

        args.data_dir = default_data_dir()
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
