"""Verdicts by recomputation: the hidden checks never take the student's process at its word.

Each model check ends by giving a fresh network of the student's weights drawn at check time and comparing its
outputs with the reference architecture holding the same weights, run on the trusted side
(``course/grading/recompute.py``); notebooks 04 and 05 are checked against the test table and the pictures
recomputed on the trusted side from the student's checkpoint loaded into the reference architecture. So:

- a student side that answers every structural question like the reference (its layers *are* the reference's) but
  whose forward returns something else, or that ignores the weights it is given, fails every model check;
- a correct ``models.py`` whose layers are registered under other names and in another order than forward calls
  them passes every model check;
- a table and pictures made by a generator that hands back the test set's originals, or a checkpoint that embeds
  anything beyond the network's own tensors, get no point from 04/05, while a student's own honest results
  (under other layer names) pass.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hidden_checks import (MODEL_CHECKS, REFERENCE_MODULES, RUN_CHECK, VARIANTS,  # noqa: E402
                                make_submission, run_checks_here, single_cell_notebook)

pytestmark = pytest.mark.skipif(not RUN_CHECK.is_file(), reason="course/grading (instructor-only) is absent")

GATE = "does not compute what the assignment's"

# forward computed as the reference does, then something else returned: every layer runs once, every structural
# answer (layers, attributes, parameter counts, call counts) is the reference's
LIES = {"zeros": "_torch.zeros_like(out)", "noise": "_torch.rand_like(out) * 2 - 1", "scaled": "out * 1.01 + 0.01"}
LYING_FORWARD = '''

import torch as _torch


def _lying(cls):
    real = cls.forward

    def forward(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        return {lie}

    cls.forward = forward


for _cls in (ConvolutionalBlock, SubPixelConvolutionalBlock, ResidualBlock, SRResNet, Generator, Discriminator):
    _lying(_cls)
'''
# the student side's own server, found and changed from models.py: the weights the grader sends are ignored
IGNORES_WEIGHTS = '''

import gc as _gc

for _o in _gc.get_objects():
    if isinstance(_o, type) and _o.__name__ == "Server" and hasattr(_o, "op_set"):
        _o.op_set = lambda self, req: {}
'''


def _verdicts(tmp_path: Path, models_source: str) -> dict:
    folder = make_submission(tmp_path / "submission", single_cell_notebook("models.py", models_source))
    return run_checks_here(list(MODEL_CHECKS), folder)


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_network_built_like_the_reference_that_returns_something_else_fails_every_model_check(lie, tmp_path):
    verdicts = _verdicts(tmp_path, REFERENCE_MODULES["models.py"] + LYING_FORWARD.replace("{lie}", LIES[lie]))
    passed = [check for check, v in verdicts.items() if v.passed]
    assert not passed, f"{lie}: passed {passed}"


def test_structure_alone_is_caught_by_the_recomputation(tmp_path):
    """The outputs scaled by 1 %: the structural checks cannot tell; the recomputation can."""
    verdicts = _verdicts(tmp_path, REFERENCE_MODULES["models.py"] + LYING_FORWARD.replace("{lie}", LIES["scaled"]))
    assert any(GATE in (v.reason or "") for v in verdicts.values()), {c: v.reason for c, v in verdicts.items()}


def test_a_student_side_that_ignores_the_weights_it_is_given_fails_every_model_check(tmp_path):
    verdicts = _verdicts(tmp_path, REFERENCE_MODULES["models.py"] + IGNORES_WEIGHTS)
    passed = [check for check, v in verdicts.items() if v.passed]
    assert not passed, f"passed {passed}"


def test_layers_named_and_registered_otherwise_pass_every_model_check(tmp_path):
    verdicts = _verdicts(tmp_path, (VARIANTS / "reordered_models.py").read_text(encoding="utf-8"))
    failed = {check: v.reason for check, v in verdicts.items() if not v.passed}
    assert not failed


# ---------------------------------------------------------------------------------------------------------
# Notebooks 04 and 05: the table and the pictures, recomputed from the checkpoints
# ---------------------------------------------------------------------------------------------------------
TINY = {"n_channels": 8, "n_blocks": 1}
# a generator that computes honestly on any other input, but hands back the test set's original when it is given one
# of its LR images (read from the data folder every sandbox sees): the student's own network, asked about the test
# images, would vouch for a table of originals
LOOKS_UP_ORIGINALS = '''

def _originals():
    from sr_utils.datasets import SREvalDataset
    from sr_utils.lists import default_data_dir, test_lists

    known = {}
    for list_file in test_lists(default_data_dir()).values():
        dataset = SREvalDataset(list_file)
        for i in range(len(dataset)):
            _, lr, hr = dataset[i]
            known[lr.tobytes()] = hr
    return known


_computed = SRResNet.forward


def _forward(self, lr_imgs):
    if lr_imgs.shape[0] == 1:
        lr = (lr_imgs[0].permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        hr = _originals().get(lr.tobytes())
        if hr is not None:
            return torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 127.5 - 1
    return _computed(self, lr_imgs)


SRResNet.forward = _forward
'''
EMBEDS = '''

class _Remembering(SRResNet):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("memory", torch.zeros(1, 3, 8, 8))


SRResNet = _Remembering
'''


def _module(source: str, name: str):
    import types

    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory):
    from course_fixtures import sample_data as copy_sample_data

    return copy_sample_data(tmp_path_factory.mktemp("data"))


def _graded_folder(root: Path, data: Path, models_source: str, make) -> Path:
    """A submission as notebooks 03-05 leave it while graded: checkpoints of ``models_source``'s networks (tiny,
    random weights), the test table and the pictures made by ``make(net) -> upscale`` (``lr -> (4h, 4w, 3)
    uint8``)."""
    from PIL import Image

    from sr_utils.checkpoint import generator_label
    from sr_utils.datasets import SREvalDataset
    from sr_utils.evaluation import bicubic, evaluate_split
    from sr_utils.lists import human_eval_list, submission_folder, test_lists
    from sr_utils.notebook import GRADING_SCRATCH

    folder = make_submission(root, single_cell_notebook("models.py", models_source))
    scratch = folder / GRADING_SCRATCH
    models = _module(models_source, f"models_{root.name}")
    torch.manual_seed(0)
    upscalers = {"bicubic": bicubic(4)}
    for stage, cls in (("srresnet", "SRResNet"), ("srgan", "Generator")):
        net = getattr(models, cls)(**TINY).eval()
        ckpt = {"arch": cls, "model_kwargs": TINY, "model": net.state_dict(), "config": {"content": "mse"}}
        (scratch / "checkpoints" / stage).mkdir(parents=True)
        torch.save(ckpt, scratch / "checkpoints" / stage / "best.pth")
        upscalers[generator_label(ckpt)] = make(net)
    rows = []
    for set_name, list_file in test_lists(data).items():
        for method, upscale in upscalers.items():
            each = evaluate_split(upscale, list_file, progress=False)
            rows.append({"set": set_name, "method": method, "psnr": sum(s["psnr"] for s in each) / len(each),
                         "ssim": sum(s["ssim"] for s in each) / len(each)})
    (scratch / "results").mkdir()
    with open(scratch / "results" / "test_table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["set", "method", "psnr", "ssim"])
        writer.writeheader()
        writer.writerows(rows)
    split, eval_list = human_eval_list(data)
    pictures = scratch / "submission" / submission_folder(split)
    pictures.mkdir(parents=True)
    dataset = SREvalDataset(eval_list)
    for i in range(len(dataset)):
        name, lr, _ = dataset[i]
        Image.fromarray(upscalers["SRGAN-MSE"](lr)).save(pictures / f"{name}.png")
    return folder


def _honest(net):
    from sr_utils.evaluation import model_upscaler

    return model_upscaler(net)


def _originals(data: Path):
    """The test set's HR originals, found by their LR in the data folder: what a generator that reads (or
    embeds) them returns."""
    from sr_utils.datasets import SREvalDataset
    from sr_utils.lists import test_lists

    known = {}
    for list_file in test_lists(data).values():
        dataset = SREvalDataset(list_file)
        for i in range(len(dataset)):
            _, lr, hr = dataset[i]
            known[lr.tobytes()] = hr
    return lambda net: (lambda lr: known[lr.tobytes()])


def _graded(folder: Path, data: Path, monkeypatch) -> dict:
    monkeypatch.setenv("SR_DATA_DIR", str(data))
    return run_checks_here(["test_table", "set5_submission"], folder)


def test_honest_results_of_a_network_named_otherwise_are_recomputed_and_pass(tmp_path, sample_data, monkeypatch):
    source = (VARIANTS / "reordered_models.py").read_text(encoding="utf-8")
    verdicts = _graded(_graded_folder(tmp_path / "honest", sample_data, source, _honest), sample_data, monkeypatch)
    assert all(v.passed for v in verdicts.values()), {c: v.reason for c, v in verdicts.items()}


def test_results_that_are_the_test_sets_originals_get_nothing(tmp_path, sample_data, monkeypatch):
    folder = _graded_folder(tmp_path / "originals", sample_data, REFERENCE_MODULES["models.py"] + LOOKS_UP_ORIGINALS,
                            _originals(sample_data))
    from sr_utils.datasets import SREvalDataset
    from sr_utils.inference import super_resolve
    from sr_utils.lists import test_lists

    monkeypatch.setenv("SR_DATA_DIR", str(sample_data))
    hostile = _module(REFERENCE_MODULES["models.py"] + LOOKS_UP_ORIGINALS, "looks_up").Generator(**TINY).eval()
    _, lr, hr = SREvalDataset(next(iter(test_lists(sample_data).values())))[0]
    assert np.array_equal(super_resolve(hostile, lr), hr)  # asked about a test image, the student's network lies
    table = list(csv.DictReader(open(folder / ".grading-run" / "results" / "test_table.csv")))
    assert max(float(r["psnr"]) for r in table if r["method"] != "bicubic") > 60  # what the notebook claimed
    verdicts = _graded(folder, sample_data, monkeypatch)
    assert not any(v.passed for v in verdicts.values()), {c: v.reason for c, v in verdicts.items()}
    assert "recomputed" in verdicts["test_table"].reason
    assert "is not the output of" in verdicts["set5_submission"].reason


def test_a_checkpoint_holding_more_than_the_network_gets_nothing(tmp_path, sample_data, monkeypatch):
    """Extra tensors (here a buffer that could hold pictures) map onto nothing in the assignment's network."""
    source = REFERENCE_MODULES["models.py"] + EMBEDS
    verdicts = _graded(_graded_folder(tmp_path / "embeds", sample_data, source, _honest), sample_data, monkeypatch)
    assert not any(v.passed for v in verdicts.values())
    assert all("state_dict holds" in v.reason for v in verdicts.values()), {c: v.reason for c, v in verdicts.items()}


def test_the_recomputed_pictures_are_what_the_honest_notebook_wrote(tmp_path, sample_data):
    """The pictures the trusted side compares with are the reference architecture's, with the student's weights:
    equal (to a level) to what the student's own network wrote, although its layers have other names."""
    from course.grading import recompute

    source = (VARIANTS / "reordered_models.py").read_text(encoding="utf-8")
    student = getattr(_module(source, "reordered"), "Generator")(**TINY).eval()
    state = student.state_dict()
    reference = recompute.reference_network("Generator", kwargs=TINY)
    x = torch.rand(1, 3, 12, 10)
    order = (recompute.call_order(reference, x), recompute.call_order(student, x))
    for mapping in recompute.candidate_mappings(reference.state_dict(), state, *order):
        reference.load_state_dict({r: state[s] for r, s in mapping.items()})
        with torch.no_grad():
            if recompute.agree(student(x), reference(x)):
                break
    else:
        pytest.fail("no mapping of the reordered Generator's weights reproduces it")
    from sr_utils.inference import super_resolve

    lr = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    diff = np.abs(super_resolve(student, lr).astype(int) - super_resolve(reference, lr).astype(int)).max()
    assert diff <= 1
