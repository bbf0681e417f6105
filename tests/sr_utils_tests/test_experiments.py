"""Every run is an experiment: named runs never touch the default run (where notebooks 04/05 and the grader look),
each folder records its config, sources and TensorBoard events; `runs` lists and plots them, `attempts` writes the
report's table; TensorBoard serves a run folder's scalars."""
from __future__ import annotations

import csv
import json
import time
import urllib.request

import pytest

from course.reference import load_reference
from sr_utils.__main__ import main
from course_fixtures import sample_data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return sample_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """A default SRResNet run, a named variant of it, and a named SRGAN that starts from the default SRResNet."""
    import os

    folder = tmp_path_factory.mktemp("assignment")
    here = os.getcwd()
    os.chdir(folder)
    try:
        common = ["--profile", "grading", "--data-dir", str(data_dir)]
        assert main(["train-srresnet", *common], default_modules=load_reference) == 0
        default_best = (folder / "checkpoints/srresnet/best.pth").read_bytes()
        assert main(["train-srresnet", *common, "--name", "fast", "--set", "lr=0.01", "note=ten times the rate"],
                    default_modules=load_reference) == 0
        assert main(["train-srgan", *common, "--name", "gan", "--set", "content=mse", "lr_d=1e-5"],
                    default_modules=load_reference) == 0
    finally:
        os.chdir(here)
    assert (folder / "checkpoints/srresnet/best.pth").read_bytes() == default_best, "named runs never touch the default"
    return folder


def test_run_folders_record_everything(runs):
    run = runs / "experiments" / "fast" / "srresnet"
    for name in ("best.pth", "last.pth", "log.csv", "curves.png", "config.json", "sources/solver.py",
                 "sources/models.py"):
        assert (run / name).is_file(), name
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["lr"] == 0.01 and record["config"]["note"] == "ten times the rate"
    assert "def train_srresnet_epoch" in (run / "sources" / "solver.py").read_text()
    assert list((run / "tb").glob("events.out.tfevents.*"))
    gan = json.loads((runs / "experiments" / "gan" / "srgan" / "config.json").read_text())["config"]
    assert gan["srresnet_checkpoint"].endswith("checkpoints/srresnet/best.pth")


def test_runs_lists_and_plots(runs, capsys):
    assert main(["runs", "--folder", str(runs), "--plot", str(runs / "results" / "runs.png")]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| ")][1:]
    assert [line.split(" | ")[0] for line in lines] == ["| default", "| fast", "| gan"]
    fast = next(line for line in lines if line.startswith("| fast"))
    assert "lr=0.01" in fast and "ten times the rate" in fast and "bicubic" in fast
    assert (runs / "results" / "runs.png").stat().st_size > 5000
    assert main(["runs", "nope", "--folder", str(runs)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_attempts_table_for_the_report(runs, data_dir, capsys):
    from sr_utils.report import write_report

    out = runs / "results"
    assert main(["attempts", "default/srresnet", "fast", "--folder", str(runs), "--data-dir", str(data_dir),
                 "--out", str(out)], default_modules=load_reference) == 0
    rows = list(csv.DictReader(open(out / "attempts.csv")))
    assert [r["run"] for r in rows] == ["default", "fast"]
    assert rows[0]["what changed"] == "(default run)" and "lr=0.01" in rows[1]["what changed"]
    psnr, ssim = (float(x) for x in rows[1]["samples_test PSNR / SSIM"].split(" / "))
    assert 10 < psnr < 40 and 0 < ssim <= 1 and int(rows[1]["best iteration"]) == 3
    assert (out / "attempts_curves.png").is_file()
    report = write_report(runs / "checkpoints").read_text()
    assert "| fast | srresnet |" in report, "the report's 'What was tried' carries the table of attempts"


def test_tensorboard_serves_the_scalars_of_a_run_folder(runs):
    """TensorBoard started on a run folder answers its scalars API with the logged validation PSNR."""
    from tensorboard import program

    run = runs / "experiments" / "fast" / "srresnet"
    logged = [(int(r["step"]), float(r["val_psnr"])) for r in csv.DictReader(open(run / "log.csv"))]
    tb = program.TensorBoard()
    tb.configure(argv=[None, "--logdir", str(run / "tb"), "--port", "0", "--host", "127.0.0.1",
                       "--load_fast", "false", "--reload_interval", "1"])
    url = tb.launch().rstrip("/")
    query = f"{url}/data/plugin/scalars/scalars?run=.&tag=val_psnr&format=json"
    for _ in range(40):  # the first load of the event files is asynchronous
        try:
            data = json.load(urllib.request.urlopen(query, timeout=5))
            break
        except Exception:
            time.sleep(0.25)
    else:
        pytest.fail(f"TensorBoard at {url} did not serve val_psnr")
    assert [(step, pytest.approx(value, abs=1e-4)) for _, step, value in data] == logged


def test_notebook_helpers_train_a_variant_and_respect_the_grading_folder(tmp_path, data_dir, monkeypatch):
    from sr_utils.experiments import evaluate_runs, show_runs, train_variant
    from sr_utils.lists import test_lists
    from sr_utils.trainer import TrainConfig

    models, solver = load_reference()
    base = TrainConfig.from_profile("grading", "srresnet", data_dir=str(data_dir))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="unknown setting"):
        train_variant("x", base, models, solver, learning_rate=1.0)
    train_variant("v", base, models, solver, progress=False, lr=0.01)
    assert (tmp_path / "experiments/v/srresnet/best.pth").is_file()
    table, figure = show_runs()
    assert "| v | srresnet |" in table.data and figure.axes[0].lines
    done = evaluate_runs(["v"], models, test_lists(data_dir))
    assert (tmp_path / "results/attempts.md").is_file() and done["rows"][0]["name"] == "v"
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    train_variant("w", base, models, solver, progress=False)
    assert (tmp_path / ".grading-run/experiments/w/srresnet/best.pth").is_file()
    assert not (tmp_path / "experiments/w").exists(), "grading never writes next to the student's runs"


def test_a_default_run_from_before_run_records_is_listed_from_its_checkpoint(runs, tmp_path):
    import shutil

    from sr_utils.experiments import list_runs

    old = tmp_path / "checkpoints" / "srresnet"
    shutil.copytree(runs / "checkpoints" / "srresnet", old, ignore=shutil.ignore_patterns("config.json", "tb",
                                                                                          "sources"))
    (listed,) = list_runs(tmp_path)
    assert (listed["name"], listed["stage"], listed["steps"]) == ("default", "srresnet", 3)
