"""Command line of the kit: ``python -m sr_utils <command>`` (console script ``sr-kit``).

    demo            the whole story on the bundled samples, offline: train, evaluate, pictures, report, grading
    baseline        the bicubic PSNR/SSIM table of the bundled test photos
    train-srresnet  iteration-based SRResNet training (--profile paper|cpu-small, --resume, --set key=value)
    train-srgan     SRGAN fine-tuning from the SRResNet checkpoint
    evaluate        PSNR/SSIM tables (Markdown, CSV, LaTeX, per image) with a bicubic row
    super-resolve   an image or a folder; --set5 writes the human-evaluation folder
    report          fill the report template from a run folder
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _baseline(args: argparse.Namespace) -> int:
    from data_tools.samples import SAMPLE_TEST, load_sample_photo

    from .evaluate import bicubic_baseline, convention_note, markdown_table

    print(f"Bicubic x{args.scale} baseline on the bundled test photos (offline, MATLAB-exact imresize):\n")
    images = {name: load_sample_photo(name) for name in SAMPLE_TEST}
    rows = bicubic_baseline(images, scale=args.scale)
    print(markdown_table(rows, ["image", "psnr", "ssim"], caption=convention_note(args.scale)))
    return 0


def _parse_sets(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.replace("-", "_")] = value
    return out


def _config(stage: str, args):
    import dataclasses
    import json

    from .trainer import PROFILES, TrainConfig

    base = dict(PROFILES[f"{args.profile}-{stage}"])
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for key, raw in _parse_sets(args.set).items():
        if key not in fields:
            raise SystemExit(f"unknown setting {key!r}; known: {', '.join(sorted(fields))}")
        default = getattr(TrainConfig(), key)
        base[key] = json.loads(raw) if isinstance(default, (list, bool)) else type(default)(raw)
    if args.data_dir:
        base["data_dir"] = str(args.data_dir)
    return TrainConfig(**base)


def _train(stage: str):
    def run(args) -> int:
        import os

        from .trainer import train

        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if distributed:  # launched by torchrun
            import torch

            torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        cfg = _config(stage, args)
        if stage == "srgan" and cfg.content == "vgg54":
            from .vgg import find_vgg19_weights

            if find_vgg19_weights() is None:
                print("ImageNet VGG19 weights are not on this machine, so the VGG54 content loss is unavailable.\n"
                      "Either place vgg19-dcbb9e9d.pth (see sr_utils.vgg) or train the paper's SRGAN-MSE variant:\n"
                      f"  python -m sr_utils train-srgan --profile {args.profile} --set content=mse", file=sys.stderr)
                return 2
        result = train(cfg, args.out / stage, resume=args.resume)
        print(f"{stage}: step {result['step']}, best validation PSNR {result['best_val_psnr']:.2f} dB, "
              f"checkpoints and log in {result['out_dir']}")
        if distributed:
            torch.distributed.destroy_process_group()
        return 0

    return run


def _evaluate(args) -> int:
    from .notebook import default_data_dir
    from .pipeline import evaluate_models, load_trained, write_tables
    from .training import test_lists

    models = {}
    for pair in args.checkpoint:
        label, _, path = pair.partition("=")
        models[label] = load_trained(path)
    sets = test_lists(args.data_dir or default_data_dir())
    tables = write_tables(evaluate_models(models, sets, tile=args.tile), args.out)
    print(tables["md"])
    print("written:", ", ".join(str(p) for p in tables["paths"]))
    return 0


def _super_resolve(args) -> int:
    from .notebook import default_data_dir
    from .pipeline import load_trained, super_resolve_paths, write_set_images
    from .training import test_lists

    net = load_trained(args.checkpoint)
    if args.set5:
        sets = test_lists(args.data_dir or default_data_dir())
        paths = write_set_images(net, sets.get("Set5", next(iter(sets.values()))), args.out, tile=args.tile)
    else:
        paths = super_resolve_paths(net, args.input, args.out, tile=args.tile)
    print(f"{len(paths)} image(s) written to {args.out}")
    return 0


def _report(args) -> int:
    from .pipeline import write_report

    print(f"report: {write_report(args.run)}")
    return 0


def _demo(args) -> int:
    from .pipeline import run_demo

    s = run_demo(args.out, data_dir=args.data_dir, grade=not args.no_grading)
    print(f"\nDemo finished in {s['seconds'] / 60:.1f} min. Everything is in {s['out_dir']}:")
    print(f"  srresnet/ srgan/   checkpoints, log.csv, curves.png (best validation PSNR {s['srresnet']:.2f} dB)")
    print(f"  eval/              table.md .csv .tex, per_image.csv (SRResNet {s['gain_db']:+.2f} dB over bicubic)")
    print("  comparison.png     bicubic / SRResNet / SRGAN / HR with zoomed crops")
    print("  submission/set5/   SR images for the human evaluation")
    print("  report.md          the report, filled")
    if s.get("grades"):
        print(f"  grading/           release built, reference autograded: {s['grades']['points']:g} / "
              f"{s['grades']['max_points']:g} points")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sr-kit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the main job on the bundled sample data (offline)")
    p.add_argument("--out", type=Path, default=Path("outputs/demo"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--no-grading", action="store_true", help="skip building the release and autograding")
    p.set_defaults(func=_demo)

    p = sub.add_parser("baseline", help="bicubic baseline table of the bundled test photos")
    p.add_argument("--scale", type=int, default=4)
    p.set_defaults(func=_baseline)

    for stage in ("srresnet", "srgan"):
        p = sub.add_parser(f"train-{stage}", help=f"train {stage} (iteration-based, resumable)")
        p.add_argument("--profile", choices=["paper", "cpu-small"], default="cpu-small")
        p.add_argument("--out", type=Path, default=Path("outputs/run"), help="run folder (<out>/<stage>/...)")
        p.add_argument("--data-dir", type=Path, default=None)
        p.add_argument("--resume", action="store_true", help="continue exactly from <out>/<stage>/last.pth")
        p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="override settings, e.g. iterations=5000")
        p.set_defaults(func=_train(stage))

    p = sub.add_parser("evaluate", help="PSNR/SSIM tables over the prepared test sets, with a bicubic row")
    p.add_argument("--checkpoint", nargs="+", required=True, metavar="LABEL=PATH")
    p.add_argument("--out", type=Path, default=Path("outputs/eval"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--tile", type=int, default=None, help="tiled inference with this LR tile size")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("super-resolve", help="super-resolve an image or a folder")
    p.add_argument("input", nargs="?", type=Path)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out", type=Path, default=Path("outputs/sr"))
    p.add_argument("--set5", action="store_true", help="SR images of every Set5 LR image (or the bundled test set)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--tile", type=int, default=None)
    p.set_defaults(func=_super_resolve)

    p = sub.add_parser("report", help="fill the report template from a run folder")
    p.add_argument("run", type=Path)
    p.set_defaults(func=_report)

    args = parser.parse_args(argv)
    if args.command == "super-resolve" and not args.set5 and args.input is None:
        parser.error("super-resolve needs an input image/folder or --set5")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
