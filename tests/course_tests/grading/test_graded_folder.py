"""What a graded folder gets back after its run: nbgrader's records of the hand-in, read from the submitted copy
beneath it, through no link, within their bound (``course.grading.graded_folder.restore_exchange_records``)."""
from __future__ import annotations

import os

from course.grading.graded_folder import EXCHANGE_RECORD_BYTES, restore_exchange_records
from course.jupyter.handin import EXCHANGE_FILES


def test_the_records_come_back_from_regular_files_only(tmp_path):
    timestamp, secret = EXCHANGE_FILES
    submitted, graded = tmp_path / "submitted", tmp_path / "graded"
    submitted.mkdir()
    graded.mkdir()
    (submitted / timestamp).write_text("2026-12-05 10:00:00.000000 UTC")
    (tmp_path / "elsewhere.txt").write_text("an instructor's file")
    os.symlink(tmp_path / "elsewhere.txt", submitted / secret)
    assert restore_exchange_records(graded, submitted) == [timestamp]
    assert (graded / timestamp).read_text() == "2026-12-05 10:00:00.000000 UTC"
    assert not (graded / secret).exists(), "a link in the submitted copy was followed"

    os.unlink(submitted / secret)
    os.mkfifo(submitted / secret)
    assert restore_exchange_records(graded, submitted) == [timestamp]
    os.unlink(submitted / secret)
    (submitted / secret).write_bytes(b"x" * (EXCHANGE_RECORD_BYTES + 1))
    assert restore_exchange_records(graded, submitted) == [timestamp]
    (submitted / secret).write_text("a1b2c3")
    assert restore_exchange_records(graded, submitted) == [timestamp, secret]
    assert (graded / secret).read_text() == "a1b2c3"
