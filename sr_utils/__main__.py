"""Command line of the kit: ``python -m sr_utils <command>`` (console script ``sr-kit``).

    train-srresnet  iteration-based SRResNet training (--profile cpu-small|paper|grading, --resume, --set key=value)
    train-srgan     SRGAN fine-tuning from the SRResNet checkpoint
    evaluate        PSNR/SSIM tables (Markdown, CSV, LaTeX, per image) with a bicubic row
    super-resolve   an image or a folder; --set5 writes the human-evaluation folder
    report          fill the report template from a run folder
    runs            list training runs (default and named experiments) and plot their validation curves
    attempts        the report's table of attempts: chosen runs scored on the test sets (results/attempts.md)
    benchmark-inference  parameters, FLOPs, ms per Set5-sized image and per 1080p frame, tiled and untiled
    gpu-check       a few AMP + channels_last iterations of each stage, resume equality, memory, speed (exit 0/1)

Training, evaluation and super-resolution use the ``models.py``/``solver.py`` you name with --models/--solver
(default: the ones in the current folder, written by notebooks 01 and 02). Instructors: ``python -m course``
runs the same commands with the reference solution.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Callable

_PROG = "python -m sr_utils"


def _module(path: Path | None, name: str, default_modules: Callable | None):
    from .notebook import load_module

    if path is None:
        if default_modules is not None:
            return default_modules()[0 if name == "models" else 1]
        path = Path(f"{name}.py")
        if not path.is_file():
            raise SystemExit(f"no {name}.py in {Path.cwd()}: run the %%writefile cells of notebook "
                             f"{'01_models' if name == 'models' else '02_solver'} first, or pass --{name} PATH")
    if not Path(path).is_file():
        raise SystemExit(f"--{name} {path}: no such file")
    return load_module(Path(path).stem, Path(path).resolve().parent, module_name=name)


def _config(stage: str, args):
    from .trainer import TrainConfig

    settings = {}
    types = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for pair in args.set or []:
        key, sep, raw = pair.partition("=")
        key = key.replace("-", "_")
        if not sep or key not in types:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(types))}")
        default = getattr(TrainConfig(), key)
        settings[key] = json.loads(raw) if isinstance(default, (list, bool)) else type(default)(raw)
    if args.data_dir:
        settings["data_dir"] = str(args.data_dir)
    return TrainConfig.from_profile(args.profile, stage, **settings)


def _train(stage: str):
    def run(args, default_modules) -> int:
        from .trainer import train

        cfg = _config(stage, args)
        models = _module(args.models, "models", default_modules)
        solver = _module(args.solver, "solver", default_modules)
        if stage == "srgan" and cfg.content == "vgg54":
            from .vgg import find_vgg19_weights

            if find_vgg19_weights() is None:
                print("ImageNet VGG19 weights are not on this machine, so the VGG54 content loss is unavailable.\n"
                      "Either place vgg19-dcbb9e9d.pth (see sr_utils.vgg) or train the paper's SRGAN-MSE variant:\n"
                      f"  {_PROG} train-srgan --profile {args.profile} --set content=mse", file=sys.stderr)
                return 2
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if distributed:  # launched by torchrun
            import torch

            torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        from .experiments import run_dir

        out = args.out / stage if not args.name else run_dir(args.name, stage)
        if stage == "srgan" and not cfg.srresnet_checkpoint and not (out.parent / "srresnet" / "best.pth").is_file():
            fallback = args.out / "srresnet" / "best.pth"  # a named SRGAN variant of the default SRResNet
            if args.name and fallback.is_file():
                cfg = dataclasses.replace(cfg, srresnet_checkpoint=str(fallback))
                print(f"{args.name}: starting from the default run's SRResNet {fallback}")
        result = train(cfg, out, models, solver, resume=args.resume)
        print(f"{stage}: step {result['step']}, best validation PSNR {result['best_val_psnr']:.2f} dB on "
              f"{result['val_split']}; checkpoints and log in {result['out_dir']}")
        if distributed:
            torch.distributed.destroy_process_group()
        return 0

    return run


def _generators(pairs, models) -> dict:
    from .checkpoint import load_generator

    nets = {}
    for pair in pairs or []:
        label, sep, path = pair.partition("=")
        if not sep:
            raise SystemExit(f"--checkpoint {pair!r}: expected LABEL=PATH, e.g. SRResNet=checkpoints/srresnet/best.pth")
        nets[label] = load_generator(path, models)
    return nets


def _lpips(args):
    """The LPIPS metric when --lpips was given (it says where to put the backbone weights when they are missing)."""
    if not getattr(args, "lpips", False):
        return None
    from .lpips_metric import LPIPSMetric

    return LPIPSMetric()


def _evaluate(args, default_modules) -> int:
    from .evaluation import evaluate_methods, methods_for
    from .lists import default_data_dir, split_name, test_lists, validation_list
    from .tables import write_tables

    data = args.data_dir or default_data_dir()
    nets = _generators(args.checkpoint, _module(args.models, "models", default_modules)) if args.checkpoint else {}
    rows = evaluate_methods(methods_for(nets, tile=args.tile), test_lists(data), lpips=_lpips(args))
    try:
        val_split = split_name(validation_list(data))
    except FileNotFoundError:
        val_split = None
    tables = write_tables(rows, args.out, validation_split=val_split)
    print(tables["md"])
    print("written:", ", ".join(str(p) for p in tables["paths"]))
    return 0


def _super_resolve(args, default_modules) -> int:
    from .inference import super_resolve_files, super_resolve_split
    from .lists import default_data_dir, human_eval_list

    net = _generators([f"model={args.checkpoint}"], _module(args.models, "models", default_modules))["model"]
    if args.set5:
        split, list_file = human_eval_list(args.data_dir or default_data_dir())
        paths = super_resolve_split(net, list_file, args.out, tile=args.tile)
        print(f"images of {split}" + (" (Set5 is not prepared: run `python -m data_tools download --only benchmark`"
                                      " and then `python -m data_tools prepare`)" if split != "Set5" else ""))
    else:
        paths = super_resolve_files(net, args.input, args.out, tile=args.tile)
    print(f"{len(paths)} image(s) written to {args.out}")
    return 0


def _runs(args, default_modules) -> int:
    from .experiments import list_runs, plot_runs, runs_table, select

    runs = select(list_runs(args.folder), args.names)
    if not runs:
        print(f"no runs under {args.folder / 'checkpoints'} or {args.folder / 'experiments'} yet")
        return 0
    print(runs_table(runs))
    plot_runs(runs, path=args.plot)
    print(f"validation curves: {args.plot}")
    return 0


def _attempts(args, default_modules) -> int:
    from .experiments import attempts_rows, list_runs, plot_runs, select, write_attempts
    from .lists import default_data_dir, test_lists

    runs = select(list_runs(args.folder), args.names)
    models = _module(args.models, "models", default_modules)
    rows = attempts_rows(runs, models, test_lists(args.data_dir or default_data_dir()), lpips=_lpips(args))
    written = write_attempts(rows, args.out)
    plot_runs(runs, path=args.out / "attempts_curves.png")
    print(written["md"])
    print("written:", ", ".join(str(p) for p in [*written["paths"], args.out / "attempts_curves.png"]))
    return 0


def _benchmark_inference(args, default_modules) -> int:
    from .speed import benchmark_inference, write_speed

    net = _generators([f"model={args.checkpoint}"], _module(args.models, "models", default_modules))["model"]
    rows = benchmark_inference(net, tile=args.tile, repeats=args.repeats)
    paths = write_speed(rows, args.out)
    print(paths[0].read_text())
    print("written:", ", ".join(str(p) for p in paths))
    return 0


def _gpu_check(args, default_modules) -> int:
    from .gpu_check import gpu_check

    models = _module(args.models, "models", default_modules)
    solver = _module(args.solver, "solver", default_modules)
    return 0 if gpu_check(models, solver, data_dir=args.data_dir, iterations=args.iterations) else 1


def _report(args, default_modules) -> int:
    from .report import write_report

    print(f"report: {write_report(args.run)}")
    return 0


def build_parser(prog: str = _PROG, description: str = __doc__) -> argparse.ArgumentParser:
    """The command line's parser (``course`` reuses it with the reference solution as the default modules)."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def modules_args(p, solver: bool):
        p.add_argument("--models", type=Path, default=None, help="models.py to use (default: ./models.py)")
        if solver:
            p.add_argument("--solver", type=Path, default=None, help="solver.py to use (default: ./solver.py)")
        p.add_argument("--data-dir", type=Path, default=None, help="data folder (default: $SR_DATA_DIR, else "
                                                                   "<project root>/data, else ./data)")

    for stage in ("srresnet", "srgan"):
        p = sub.add_parser(f"train-{stage}", help=f"train {stage} (iteration-based, resumable)")
        modules_args(p, solver=True)
        p.add_argument("--profile", choices=["cpu-small", "paper", "grading"], default="cpu-small")
        p.add_argument("--out", type=Path, default=Path("checkpoints"),
                       help="run folder: writes <out>/<stage>/{last,best}.pth, log.csv, curves.png "
                            "(default: checkpoints, where notebooks 04 and 05 look)")
        p.add_argument("--resume", action="store_true", help="continue exactly from <out>/<stage>/last.pth")
        p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="override settings, e.g. iterations=5000")
        p.add_argument("--name", default=None, help="a named experiment: writes experiments/<name>/<stage>/ instead "
                                                    "of <out>/<stage>/ (the default run stays untouched)")
        p.set_defaults(func=_train(stage))

    p = sub.add_parser("evaluate", help="PSNR/SSIM tables over the prepared test sets, with a bicubic row")
    modules_args(p, solver=False)
    p.add_argument("--checkpoint", nargs="*", metavar="LABEL=PATH", help="e.g. SRResNet=checkpoints/srresnet/best.pth")
    p.add_argument("--out", type=Path, default=Path("results/eval"))
    p.add_argument("--tile", type=int, default=None, help="tiled inference with this LR tile size")
    p.add_argument("--lpips", action="store_true", help="add LPIPS (needs the lpips package and AlexNet weights, "
                                                        "see sr_utils.lpips_metric)")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("super-resolve", help="super-resolve an image or a folder")
    modules_args(p, solver=False)
    p.add_argument("input", nargs="?", type=Path)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out", type=Path, default=Path("results/sr"))
    p.add_argument("--set5", action="store_true", help="SR images of every Set5 LR image (or the bundled test set)")
    p.add_argument("--tile", type=int, default=None)
    p.set_defaults(func=_super_resolve)

    p = sub.add_parser("runs", help="list training runs and plot their validation curves on one figure")
    p.add_argument("names", nargs="*", help="runs to show (NAME or NAME/STAGE; default: all)")
    p.add_argument("--folder", type=Path, default=Path("."), help="the folder holding checkpoints/ and experiments/")
    p.add_argument("--plot", type=Path, default=Path("results/runs.png"))
    p.set_defaults(func=_runs)

    p = sub.add_parser("attempts", help="the report's table of attempts: chosen runs on the test sets")
    modules_args(p, solver=False)
    p.add_argument("names", nargs="*", help="runs to include (NAME or NAME/STAGE; default: all)")
    p.add_argument("--folder", type=Path, default=Path("."), help="the folder holding checkpoints/ and experiments/")
    p.add_argument("--out", type=Path, default=Path("results"), help="writes attempts.md, attempts.csv and "
                                                                     "attempts_curves.png here (handed in)")
    p.add_argument("--lpips", action="store_true", help="add LPIPS to the test columns (see sr_utils.lpips_metric)")
    p.set_defaults(func=_attempts)

    p = sub.add_parser("benchmark-inference", help="parameters, FLOPs and ms per image (Set5-sized, 1080p), tiled "
                                                   "and untiled, on this device")
    modules_args(p, solver=False)
    p.add_argument("checkpoint", type=Path, help="e.g. checkpoints/srresnet/best.pth")
    p.add_argument("--tile", type=int, default=128, help="LR tile size of the tiled runs")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median; after a warm-up)")
    p.add_argument("--out", type=Path, default=Path("results"), help="writes inference_speed.{md,csv,png} here")
    p.set_defaults(func=_benchmark_inference)

    p = sub.add_parser("gpu-check", help="check the GPU path before class: AMP, channels_last, resume, memory, speed")
    modules_args(p, solver=True)
    p.add_argument("--iterations", type=int, default=4, help="iterations per stage (stopped and resumed halfway)")
    p.set_defaults(func=_gpu_check)

    p = sub.add_parser("report", help="fill the report template from a run folder")
    p.add_argument("run", type=Path)
    p.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None, default_modules: Callable | None = None,
         parser: argparse.ArgumentParser | None = None) -> int:
    """Run one command. ``default_modules()`` returns the ``(models, solver)`` used when --models/--solver are not
    given (default: ``./models.py`` and ``./solver.py``)."""
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    if args.command == "super-resolve" and not args.set5 and args.input is None:
        parser.error("super-resolve needs an input image/folder or --set5")
    from .checkpoint import CheckpointError

    try:
        return args.func(args, default_modules)
    except (CheckpointError, FileNotFoundError, ValueError) as e:  # a missing file, an unusable file or setting: say which
        print(f"{parser.prog} {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
