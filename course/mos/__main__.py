"""Human evaluation of the students' Set5 images: a blinded mean-opinion-score (MOS) study in the browser.

    python -m course.mos collect superres [--from DIR] [--rater NAME ...] [--peer]   # check, copy, freeze the study
    python -m course.mos serve [--host 127.0.0.1] [--port 8765]                       # the rating app, one link per rater
    python -m course.mos collect superres --peer --ratings-per-student 7              # balanced peer rating
    python -m course.mos collect superres --mode pairwise                              # the better of two (keys <- ->)
    python -m course.mos collect superres --language zh-CN                            # rating pages in Chinese
    python -m course.mos results [--exclude RATER ...] [--keep RATER ...] [--to-gradebook]   # screened, model MOS
    python -m course.mos demo outputs/demo                                            # a scripted study on the demo

The study lives in course/studies/<assignment>/ (--study DIR elsewhere); docs/mos.md explains the statistics and the
security model of the rating app.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course.gradebook_url import gradebook_url
from course.paths import KIT_ROOT as REPO

#: With --peer, raters per student unless --ratings-per-student says otherwise (a class of 100: 58 images each).
PEER_RATINGS_PER_STUDENT = 7


def _collect(args) -> int:
    from course.mos.collect import collect, reference_set
    from course.mos.csvsafe import write_csv
    from course.mos.references import parse_reference_args, reference_outputs
    from course.mos.study import calibration_pairs, default_study_folder, freeze, make_study_folder, write_links

    study_dir = args.study or default_study_folder(args.course_dir, args.assignment)
    if (study_dir / "study.json").exists() and not args.force:  # before the slow part
        raise FileExistsError(f"{study_dir} already holds a study (with its answers): pass --force to replace it, "
                              "or --study another folder")
    refs = parse_reference_args(args.reference)
    ref = reference_set(args.data_dir)
    from course.grading.contract import SUBMITTED_DIR

    src = args.src or args.course_dir / SUBMITTED_DIR
    print(f"collecting {ref.label} images from {src}")
    got = collect(src, ref, args.assignment)
    make_study_folder(study_dir)
    report = study_dir / "collection.csv"  # written first: the reasons stay even when nothing can be rated
    write_csv(report, ["student", "status", "reason"],
              [*([s, "collected", ""] for s in sorted(got.accepted)),
               *([s, "left out", reason] for s, reason in sorted(got.rejected.items()))])
    references = {name: reference_outputs(path, ref.lr) for name, path in refs.items()}
    study = freeze(study_dir, ref, got.accepted, args.rater or ["instructor"], peer=args.peer, references=references,
                   calibration=calibration_pairs(args.data_dir, n=args.calibration), seed=args.seed, force=args.force,
                   per_student=args.ratings_per_student if args.ratings_per_student else
                   (PEER_RATINGS_PER_STUDENT if args.peer and len(got.accepted) > PEER_RATINGS_PER_STUDENT + 1
                    else None), repeats=args.repeats, mode=args.mode, pairs_per_rater=args.pairs_per_rater,
                   language=args.language)
    links = write_links(study, f"http://127.0.0.1:{args.port}")
    print(f"study frozen in {study_dir}: {len(study.meta['items'])} items ({len(study.meta['versions'])} versions x "
          f"{len(ref.names)} images of {ref.label}), {len(study.tokens)} raters; per-student reasons in {report}; "
          f"private links in {links}")
    return 0


def _serve(args) -> int:
    from course.mos.app import serve
    from course.mos.study import default_study_folder, load_study

    serve(load_study(args.study or default_study_folder(args.course_dir, args.assignment)), args.host, args.port,
          language=args.language)
    return 0


def _results(args) -> int:
    from course.mos.feedback import write_student_files
    from course.mos.gradebook import student_points, to_gradebook, write_points_csv
    from course.mos.results import analyse, write_results
    from course.mos.study import default_study_folder, load_study

    study = load_study(args.study or default_study_folder(args.course_dir, args.assignment))
    a = analyse(study, args.exclude or [], args.min_gap, keep=args.keep or [], max_points=args.points)
    language = args.language or study.meta.get("language") or "en"
    paths = write_results(a, args.out or study.folder / "results")
    print(paths["md"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    own = write_student_files(a, paths["csv"].parent / "students", args.points, language)
    print(f"each student's own result (for their feedback): {len(own)} files in {paths['csv'].parent / 'students'}")
    if args.to_gradebook:
        written = to_gradebook(args.gradebook or gradebook_url(args.course_dir),
                               args.assignment, a, language=language)
        max_score = written["cell"][1] if written["cell"] else args.points
        csv_path = write_points_csv(student_points(a, max_score), max_score, paths["csv"].parent /
                                    "human_evaluation.csv")
        print(f"points in {csv_path}")
        if written["cell"] is None:
            return 3
    return 0


def _demo(args) -> int:
    from course.mos.scripted_study import run_demo_study

    paths = run_demo_study(args.out, seed=args.seed)
    print(f"MOS results page of the demo study: {paths['html']}")
    return 0


def main(argv=None) -> int:
    from sr_utils.i18n import LANGUAGES

    ap = argparse.ArgumentParser(prog="python -m course.mos", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    def common(p, assignment=True):
        if assignment:
            p.add_argument("assignment", nargs="?", default="superres", help="assignment name (superres)")
        p.add_argument("--course-dir", type=Path, default=REPO, help="course root (holds course/submitted/)")
        p.add_argument("--study", type=Path, help="study folder (default course/studies/<assignment>/)")

    p = sub.add_parser("collect", help="check the students' images and freeze a study")
    common(p)
    p.add_argument("--from", dest="src", type=Path,
                   help="FOLDER/<student>/[superres/]submission/{set5,samples}/*.png instead of course/submitted/")
    p.add_argument("--data-dir", type=Path, help="prepared data folder (default: the kit's data folder)")
    p.add_argument("--rater", action="append", help="a rater's name (repeatable; default: instructor)")
    p.add_argument("--peer", action="store_true", help="every collected student rates too (never their own images)")
    p.add_argument("--reference", action="append", metavar="NAME=CHECKPOINT",
                   help="also show a reference model's output (e.g. SRGAN=outputs/demo/srgan/best.pth)")
    p.add_argument("--calibration", type=int, default=3, help="calibration photos (NN = 1, HR = 5 pairs)")
    p.add_argument("--seed", type=int, help="seed of the blinded orders (default: random)")
    p.add_argument("--ratings-per-student", type=int, metavar="N",
                   help="raters per student, balanced and random (default with --peer: 7 when the class is larger "
                        "than 8; otherwise every rater rates every student)")
    p.add_argument("--repeats", type=int, default=3, help="items each rater sees twice (test-retest screening)")
    p.add_argument("--mode", choices=("rating", "pairwise"), default="rating",
                   help="rating: scores 1-5 (default); pairwise: the better of two versions of an image (keys <- ->)")
    p.add_argument("--pairs-per-rater", type=int, default=30, help="comparisons per rater in pairwise mode")
    p.add_argument("--port", type=int, default=8765, help="port written in links.txt")
    p.add_argument("--language", choices=LANGUAGES,
                   help="language of the rating pages, stored with the study (default: each rater's browser's; "
                        "a link with ?lang=en|zh-CN overrides it)")
    p.add_argument("--force", action="store_true", help="replace an existing study and its answers")
    p.set_defaults(func=_collect)

    p = sub.add_parser("serve", help="the rating web app (one private link per rater)")
    common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for a class network)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--language", choices=LANGUAGES,
                   help="language of the rating pages for this run (default: the study's, else each browser's)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("results", help="MOS per student with 95%% CI, controls, raters, agreement")
    common(p)
    p.add_argument("--out", type=Path, help="output folder (default <study>/results)")
    p.add_argument("--exclude", action="append", metavar="RATER", help="leave a rater out (repeatable)")
    p.add_argument("--keep", action="append", metavar="RATER",
                   help="put a rater flagged by the screening back in (repeatable)")
    p.add_argument("--min-gap", type=float, default=1.0,
                   help="gold check: a rater's HR-control mean must exceed their NN-control mean by this")
    p.add_argument("--to-gradebook", action="store_true", help="points into the nbgrader gradebook's "
                   "'human_evaluation' cell (and human_evaluation.csv)")
    p.add_argument("--gradebook", help="gradebook URL (default: $SR_KIT_GRADEBOOK_URL, else "
                   "sqlite:///<course>/course/gradebook.db)")
    p.add_argument("--language", choices=LANGUAGES,
                   help="language of each student's result text (feedback; default: the study's, else en)")
    p.add_argument("--points", type=float, default=4,
                   help="points of the rubric line (the gradebook cell's maximum wins when it exists)")
    p.set_defaults(func=_results)

    p = sub.add_parser("demo", help="a small study on `make demo`'s outputs, answered by scripted raters")
    p.add_argument("out", type=Path, nargs="?", default=Path("outputs/demo"), help="the demo's output folder")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)

    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
