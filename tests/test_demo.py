"""The command line's baseline table, and the demo pipeline's plumbing (tiny iterations; `make demo` runs it full)."""
from __future__ import annotations

import re
import subprocess
import sys

from data_tools.samples import SAMPLE_TEST


def test_baseline_prints_bicubic_table():
    out = subprocess.run([sys.executable, "-m", "sr_utils", "baseline"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = re.findall(r"^\| (\S+) \| ([\d.]+) \| ([\d.]+) \|$", out.stdout, re.M)
    names = [r[0] for r in rows]
    assert names == [*SAMPLE_TEST, "**mean**"], out.stdout
    for name, p, s in rows:
        # bicubic x4 on natural photos: 22-34 dB; 8-20 dB would mean a broken pipeline
        assert 22 < float(p) < 34 and 0.5 < float(s) < 1, f"{name}: implausible bicubic PSNR/SSIM {p}/{s}"
    assert "shaved" in out.stdout, "the evaluation convention must be printed under the table"


def test_demo_pipeline_writes_everything(tmp_path):
    from sr_utils.notebook import ensure_sample_data
    from sr_utils.pipeline import run_demo

    data = ensure_sample_data(tmp_path / "data")
    small = dict(iterations=2, val_every=2, n_channels=8, n_blocks=1, batch_size=2, val_images=1)
    s = run_demo(tmp_path / "demo", data_dir=data, grade=False, progress=False, log=lambda *a: None, overrides=small)
    out = tmp_path / "demo"
    for path in ("srresnet/last.pth", "srgan/last.pth", "eval/table.md", "eval/table.csv", "eval/table.tex",
                 "eval/per_image.csv", "comparison.png", "report.md"):
        assert (out / path).is_file(), path
    assert len(list((out / "submission" / "set5").glob("*.png"))) == len(SAMPLE_TEST)
    report = (out / "report.md").read_text()
    assert "## 3. Test results" in report and "bicubic" in report and "shaved" in report
    assert isinstance(s["gain_db"], float)
