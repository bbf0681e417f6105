"""`make demo`'s command runs offline and prints a bicubic table with sane numbers."""
from __future__ import annotations

import re
import subprocess
import sys

from data_tools.samples import SAMPLE_TEST


def test_demo_prints_bicubic_table():
    out = subprocess.run([sys.executable, "-m", "sr_utils", "demo"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = re.findall(r"^\| (\S+) \| ([\d.]+) \| ([\d.]+) \|$", out.stdout, re.M)
    names = [r[0] for r in rows]
    assert names == [*SAMPLE_TEST, "**mean**"], out.stdout
    for name, p, s in rows:
        # bicubic x4 on natural photos: 22-34 dB; 8-20 dB would mean a broken pipeline
        assert 22 < float(p) < 34 and 0.5 < float(s) < 1, f"{name}: implausible bicubic PSNR/SSIM {p}/{s}"
    assert "shaved" in out.stdout, "the evaluation convention must be printed under the table"
