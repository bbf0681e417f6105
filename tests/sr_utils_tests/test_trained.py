"""What notebooks 04/05 load (sr_utils.trained) and where the notebooks write under nbgrader (output_path)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_utils.checkpoint import generator_label, save_checkpoint
from sr_utils.inference import super_resolve
from sr_utils.lists import submission_folder
from sr_utils.notebook import GRADING_SCRATCH, output_path
from sr_utils.trained import StandInGenerator, load_trained_generators


@pytest.fixture
def student(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


@pytest.fixture
def grading(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")


def test_output_path_is_the_folder_itself_for_a_student_and_a_scratch_folder_under_nbgrader(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert output_path("checkpoints/srresnet").parts == ("checkpoints", "srresnet")
    for mode in ("validate", "autograde"):
        monkeypatch.setenv("NBGRADER_EXECUTION", mode)
        got = output_path("results/test_table.csv")
        assert got.parts == (GRADING_SCRATCH, "results", "test_table.csv") and GRADING_SCRATCH.startswith(".")
    for bad in ("/etc/passwd", "../elsewhere"):
        with pytest.raises(ValueError, match="inside the notebook's folder"):
            output_path(bad)


def _save(models, path, stage, content="mse"):
    kwargs = dict(n_channels=8, n_blocks=1, scaling_factor=4)
    arch = "SRResNet" if stage == "srresnet" else "Generator"
    net = getattr(models, arch)(**kwargs)
    save_checkpoint(path, model=net.state_dict(), arch=arch, model_kwargs=kwargs, config={"content": content})
    return net


def test_labels_say_what_the_checkpoint_holds():
    assert generator_label({"arch": "SRResNet", "config": {"content": "mse"}}) == "SRResNet"
    assert generator_label({"arch": "Generator", "config": {"content": "mse"}}) == "SRGAN-MSE"
    assert generator_label({"arch": "Generator", "config": {"content": "vgg54"}}) == "SRGAN"
    assert submission_folder("Set5") == "set5" and submission_folder("samples_test") == "samples"


def test_a_missing_checkpoint_tells_the_student_to_fix_notebook_03(tmp_path, student):
    from course.reference import load_reference

    models, _ = load_reference()
    with pytest.raises(FileNotFoundError, match="03_train did not produce checkpoints/srresnet/best.pth: fix 03"):
        load_trained_generators(models, tmp_path)
    _save(models, tmp_path / "checkpoints" / "srresnet" / "best.pth", "srresnet")
    with pytest.raises(FileNotFoundError, match="checkpoints/srgan/best.pth"):
        load_trained_generators(models, tmp_path)
    _save(models, tmp_path / "checkpoints" / "srgan" / "best.pth", "srgan", content="vgg54")
    nets = load_trained_generators(models, tmp_path)
    assert list(nets) == ["SRResNet", "SRGAN"] and all(not n.training for n in nets.values())


def test_under_nbgrader_the_student_checkpoints_are_not_read_and_a_labelled_stand_in_fills_a_gap(
        tmp_path, grading, capsys):
    from course.reference import load_reference

    models, _ = load_reference()
    # the student's trained models beside the notebook are not what grading uses: only .grading-run/ counts
    _save(models, tmp_path / "checkpoints" / "srresnet" / "best.pth", "srresnet")
    _save(models, tmp_path / "checkpoints" / "srgan" / "best.pth", "srgan")
    trained = _save(models, tmp_path / GRADING_SCRATCH / "checkpoints" / "srresnet" / "best.pth", "srresnet")
    nets = load_trained_generators(models, tmp_path)
    assert list(nets) == ["SRResNet", "SRGAN (stand-in)"]
    assert isinstance(nets["SRGAN (stand-in)"], StandInGenerator)
    x = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        assert torch.equal(nets["SRResNet"](x), trained.eval()(x))
    said = capsys.readouterr().out
    assert "03_train did not produce checkpoints/srgan/best.pth: fix 03_train first" in said and "stand-in" in said


def test_the_stand_in_is_a_deterministic_sharpened_bicubic_in_the_generator_convention():
    from sr_utils.inference import bicubic_upscale

    lr = (np.random.default_rng(0).random((12, 10, 3)) * 255).astype(np.uint8)
    a, b = super_resolve(StandInGenerator(), lr), super_resolve(StandInGenerator(), lr)
    assert a.shape == (48, 40, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    flat = np.full((6, 6, 3), 100, np.uint8)
    assert np.abs(super_resolve(StandInGenerator(), flat).astype(int) - 100).max() <= 1  # [0,1] -> [-1,1] kept
    assert not np.array_equal(a, bicubic_upscale(lr, 4)), "the stand-in must not be the table's bicubic row"
    assert not any(p.requires_grad for p in StandInGenerator().parameters()), "nothing to train"
