"""The hidden checks of 04_test and 05_super_resolution: the table and the Set5 pictures are recomputed here from
the submission's own checkpoints (what notebook 03 wrote while graded), never from what the student's code does with
the test images; the submission's files are read beneath its folder, through no link (:func:`read_student_file`)."""
from __future__ import annotations

import csv
import functools
import io
from pathlib import Path

import numpy as np
import torch

from sr_utils.lists import default_data_dir

from ..recompute import recompute
from ..student_client import CheckFailed, Message, Student
from .common import Remote, check, expect, fresh_generator, uniform

MAX_FILE = 256 << 20  # bytes: a student file (checkpoint, csv, png) read by the trusted side


@functools.cache
def load_ahead(compiled_kernels: bool = True) -> None:
    """Import now what later checks need (the grader's check server does this before its submission starts, so
    that it is not waited for after a notebook): the evaluation code, PIL, numba's compiler set up and, with
    ``compiled_kernels``, imresize's compiled kernels (which starts numba's threads: not in a process that will
    fork; the fork server's children load them, each in a few hundredths of a second once the compiler is set up)."""
    import PIL.Image  # noqa: F401
    import sr_utils.evaluation  # noqa: F401
    import sr_utils.trained  # noqa: F401
    from sr_utils.imresize import compile_kernels, prepare_compiler

    prepare_compiler()
    if compiled_kernels:
        compile_kernels()


def read_student_file(path: Path, limit: int = MAX_FILE, folder: Path | None = None) -> bytes:
    """A regular file of the submission, at most ``limit`` bytes, read beneath ``folder`` (the submission; without
    it, the file's own folder) through a walk of directory descriptors: no component, folder or file, is followed
    if it is a link, even one a running kernel swaps in while this reads (:mod:`course.student_files`)."""
    import errno

    from course.student_files import FileTooLarge, read_beneath, relative_to

    folder = Path(path).parent if folder is None else Path(folder)
    try:
        rel = relative_to(path, folder)
        return read_beneath(folder, rel, limit)
    except OSError as e:
        at, last = getattr(e, "at", ""), getattr(e, "last", True)
        if e.errno == errno.ELOOP and at and not last:
            raise CheckFailed("{path} is a link, not a folder of the submission", path=at) from None
        raise CheckFailed("{path} is missing or not a plain file", path=f"{path.parent.name}/{path.name}") from None
    except ValueError as e:
        if isinstance(e, FileTooLarge):
            raise CheckFailed("{path} is larger than {mb} MB", path=path.name, mb=limit >> 20) from None
        raise CheckFailed("{path} is not a plain file", path=path.name) from None


def _is_student_file(path: Path, folder: Path) -> bool:
    """Whether ``path`` is a regular file beneath ``folder`` reached through no link (a walk of directory
    descriptors, like :func:`read_student_file`: never a path lookup a running kernel could redirect)."""
    from course.student_files import is_file_beneath, relative_to

    try:
        return is_file_beneath(folder, relative_to(path, folder))
    except ValueError:
        return False


def _trained(student: Student, folder: Path, name: str) -> tuple[str, torch.nn.Module]:
    """``(label, network)`` of what notebooks 04 and 05 used for stage ``name`` (``srresnet``/``srgan``): the
    student's trained network of ``checkpoints/<name>/best.pth`` as notebook 03 wrote it while graded (in
    ``.grading-run/``), or, when 03 wrote none, the kit's stand-in, exactly as :mod:`sr_utils.trained` does.

    The network returned runs here: the assignment's architecture (the reference, built from the checkpoint's
    ``model_kwargs``) holding the checkpoint's weights, once the student's own network, built and loaded with the
    same checkpoint on the student side, has been seen to compute the same thing on a fresh input
    (:func:`recompute.recompute`). What the student's code does with the test images themselves never counts."""
    from sr_utils.checkpoint import generator_label
    from sr_utils.notebook import GRADING_SCRATCH
    from sr_utils.trained import StandInGenerator, stand_in_label

    shown = f"checkpoints/{name}/best.pth"
    path = folder / GRADING_SCRATCH / "checkpoints" / name / "best.pth"
    if not _is_student_file(path, folder):
        return stand_in_label(name), StandInGenerator().eval()
    data = read_student_file(path, folder=folder)
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        raise CheckFailed("{path} is not a readable checkpoint of tensors: run notebook 03_train again",
                          path=shown) from None
    kwargs = ckpt.get("model_kwargs", {}) if isinstance(ckpt, dict) else None
    state = ckpt.get("model") if isinstance(ckpt, dict) else None
    expect(isinstance(kwargs, dict) and all(isinstance(k, str) and isinstance(v, (int, float, str, bool))
                                            for k, v in kwargs.items()) and isinstance(state, dict),
           "{path} does not hold model_kwargs and a model state_dict: run notebook 03_train again", path=shown)
    cls = "SRResNet" if name == "srresnet" else "Generator"
    expect(ckpt.get("arch") == cls, "{path} does not say it holds a {cls} (arch): run notebook 03_train again",
           path=shown, cls=cls)
    config = ckpt.get("config")
    label = generator_label({"arch": cls, "config": config if isinstance(config, dict) else {}})
    weights = {k: v for k, v in state.items() if isinstance(k, str) and torch.is_tensor(v)}
    expect(len(weights) == len(state), "{path} does not hold model_kwargs and a model state_dict: run notebook "
                                       "03_train again", path=shown)
    net = Remote.new(student, cls, what=Message("building the {name} model of the checkpoint", name=name), **kwargs)
    net.call("load_state_dict", weights, what=Message("loading {path}", path=shown))
    fresh = uniform(fresh_generator(), 1, 3, 12, 10)
    checked = recompute(net, cls, [fresh], kwargs=kwargs, weights=weights,
                        what=Message("the {cls} of {path}", cls=cls, path=shown))
    return label, checked.reference


def _table_scores(student: Student, folder: Path) -> tuple[set, dict]:
    """The methods (bicubic and the labels of the networks of the checkpoints notebook 03 left, or of the
    stand-ins) and ``{(set, method): (psnr, ssim)}`` recomputed with the kit's convention for every test set of at
    most 20 images."""
    from sr_utils.datasets import SREvalDataset
    from sr_utils.evaluation import bicubic, evaluate_split, model_upscaler
    from sr_utils.lists import test_lists
    from sr_utils.trained import STAGES

    upscalers = {"bicubic": bicubic(4)}
    for stage in STAGES:
        label, net = _trained(student, folder, stage)
        upscalers[label] = model_upscaler(net)
    scores = {}
    for set_name, list_file in test_lists(default_data_dir()).items():
        if len(SREvalDataset(list_file)) > 20:
            continue  # large sets are not recomputed here
        for method, upscale in upscalers.items():
            each = evaluate_split(upscale, list_file, progress=False)
            scores[set_name, method] = (sum(s["psnr"] for s in each) / len(each),
                                        sum(s["ssim"] for s in each) / len(each))
    return set(upscalers), scores


def prepare_test_table(student: Student, folder: Path) -> None:
    """The recomputation of ``test_table``, done before notebook 04 runs (the checkpoints are 03's): the grader
    calls this while the kernel works; the check then only reads the table."""
    _PREPARED[folder, "test_table"] = _table_scores(student, folder)


# Work a check can do before its notebook has run, from what the earlier notebooks left (the grader's check server
# calls it while the kernel runs); results are kept per submission folder until the check uses them.
PREPARE = {"test_table": prepare_test_table}
_PREPARED: dict = {}


@check
def test_table(student: Student, folder: Path) -> None:
    from sr_utils.notebook import GRADING_SCRATCH

    path = folder / GRADING_SCRATCH / "results" / "test_table.csv"
    expect(_is_student_file(path, folder), "results/test_table.csv is missing: run the table cell")
    text = read_student_file(path, 1 << 20, folder=folder).decode("utf-8", errors="replace")
    rows = list(csv.DictReader(io.StringIO(text)))
    expect(rows and {"set", "method", "psnr", "ssim"} <= set(rows[0]), "results/test_table.csv: unexpected columns")
    methods, scores = _PREPARED.pop((folder, "test_table"), None) or _table_scores(student, folder)
    seen = set()
    for row in rows[:100]:
        set_name, method = row.get("set"), row.get("method")
        if (set_name, method) not in scores:
            continue
        psnr, ssim = scores[set_name, method]
        try:
            got_psnr, got_ssim = float(row["psnr"]), float(row["ssim"])
        except (TypeError, ValueError):
            raise CheckFailed("{set}/{method}: the table's psnr/ssim are not numbers", set=set_name,
                              method=method) from None
        expect(abs(got_psnr - psnr) < 0.01 and abs(got_ssim - ssim) < 1e-4,
               "{set}/{method}: the table says {got_psnr:.2f} dB / {got_ssim:.4f}, recomputed with the kit's "
               "convention: {psnr:.2f} dB / {ssim:.4f} (check evaluate())", set=set_name, method=method,
               got_psnr=got_psnr, got_ssim=got_ssim, psnr=psnr, ssim=ssim)
        seen.add(method)
    expect(seen == methods, "rows missing for {methods} on the test sets", methods=sorted(methods - seen))


@check
def set5_submission(student: Student, folder: Path) -> None:
    from PIL import Image

    from sr_utils.datasets import SREvalDataset
    from sr_utils.inference import super_resolve
    from sr_utils.lists import human_eval_list, submission_folder
    from sr_utils.notebook import GRADING_SCRATCH

    Image.MAX_IMAGE_PIXELS = 64 << 20  # a decompression bomb is refused by PIL
    split, eval_list = human_eval_list(default_data_dir())
    dataset = SREvalDataset(eval_list)
    label, generator_net = _trained(student, folder, "srgan")
    shown_dir = f"submission/{submission_folder(split)}"
    for i in range(len(dataset)):
        name, lr, _ = dataset[i]
        path = folder / GRADING_SCRATCH / shown_dir / f"{name}.png"
        shown = f"{shown_dir}/{name}.png"
        expect(_is_student_file(path, folder), "{path} is missing", path=shown)
        try:
            with Image.open(io.BytesIO(read_student_file(path, 64 << 20, folder=folder))) as im:
                got = np.asarray(im.convert("RGB"))
        except CheckFailed:
            raise
        except Exception:
            raise CheckFailed("{path} is not a readable PNG image", path=shown) from None
        want = super_resolve(generator_net, lr)
        expect(got.shape == want.shape, "{path} is {got}, expected {want}", path=shown, got=got.shape,
               want=want.shape)
        diff = int(np.abs(got.astype(np.int16) - want.astype(np.int16)).max())
        expect(diff <= 1, "{path} is not the output of {label} for that image (max difference {diff} levels)",
               path=shown, label=label, diff=diff)

