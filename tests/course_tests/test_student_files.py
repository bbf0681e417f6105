"""course/student_files.py: the trusted side reads a student's files beneath the submission folder only, through a
walk of directory descriptors, never through a link -- also while the student's kernel keeps swapping folders for
links."""
from __future__ import annotations

import errno
import os
import stat
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

from course.student_files import is_file_beneath, open_beneath, read_beneath, split_relative

REAL, SECRET = b"the student's own file\n", b"ANOTHER STUDENT'S CHECKPOINT\n"


@pytest.fixture
def tree(tmp_path):
    """``sub/a/b/file`` (the submission), ``outside/b/file`` (another student's), and a link ``sub/a_link`` to
    ``outside`` ready to be swapped in for ``sub/a``."""
    sub, outside = tmp_path / "sub", tmp_path / "outside"
    (sub / "a" / "b").mkdir(parents=True)
    (sub / "a" / "b" / "file").write_bytes(REAL)
    (outside / "b").mkdir(parents=True)
    (outside / "b" / "file").write_bytes(SECRET)
    (outside / "file").write_bytes(SECRET)
    os.symlink(outside, sub / "a_link")
    return sub, outside


def test_reads_a_plain_file_at_any_depth(tree):
    sub, _ = tree
    assert read_beneath(sub, "a/b/file", 1 << 20) == REAL
    assert read_beneath(sub, Path("a") / "b" / "file", 1 << 20) == REAL
    assert is_file_beneath(sub, "a/b/file") and not is_file_beneath(sub, "a/b") and not is_file_beneath(sub, "nope")
    fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
    try:  # an open folder's descriptor is accepted, and left open
        assert read_beneath(fd, "a/b/file", 100) == REAL
        os.fstat(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("name", ["../outside/file", "a/../../outside/file", "/etc/passwd", "a/./b/file", "a//b/file",
                                  "", ".", "a/b/", "a\0b"])
def test_names_that_leave_or_bend_the_folder_are_refused(tree, name):
    sub, _ = tree
    with pytest.raises(ValueError):
        split_relative(name)
    with pytest.raises(ValueError):
        read_beneath(sub, name, 1 << 20)


def test_links_at_any_level_are_refused(tree):
    sub, outside = tree
    with pytest.raises(OSError) as e:  # a folder on the way is a link
        read_beneath(sub, "a_link/b/file", 1 << 20)
    assert e.value.errno == errno.ELOOP and e.value.at == "a_link" and not e.value.last
    os.symlink(outside / "file", sub / "a" / "b" / "leaf")
    with pytest.raises(OSError) as e:  # the file is a link
        read_beneath(sub, "a/b/leaf", 1 << 20)
    assert e.value.errno == errno.ELOOP and e.value.last
    os.symlink("file", sub / "a" / "b" / "near")  # even to a file beside it
    with pytest.raises(OSError):
        read_beneath(sub, "a/b/near", 1 << 20)
    with pytest.raises(OSError):  # the submission folder itself is a link
        read_beneath(sub / "a_link", "file", 1 << 20)
    with pytest.raises(FileNotFoundError):
        read_beneath(sub, "a/missing/file", 1 << 20)
    with pytest.raises(OSError) as e:  # a file where a folder is needed
        read_beneath(sub, "a/b/file/x", 1 << 20)
    assert e.value.errno == errno.ELOOP


def test_fifos_devices_folders_and_oversized_files_are_refused_without_blocking(tree):
    sub, _ = tree
    os.mkfifo(sub / "a" / "fifo")  # opening it for reading would block: it is never opened for reading
    with pytest.raises(ValueError):
        read_beneath(sub, "a/fifo", 1 << 20)
    if os.geteuid() == 0:
        os.mknod(sub / "a" / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        with pytest.raises(ValueError):
            read_beneath(sub, "a/null", 1 << 20)
    with pytest.raises(ValueError):
        read_beneath(sub, "a/b", 1 << 20)
    (sub / "big").write_bytes(b"x" * 1001)
    with pytest.raises(ValueError, match="over the 1000 byte limit"):
        read_beneath(sub, "big", 1000)
    assert read_beneath(sub, "big", 1001) == b"x" * 1001
    fd = open_beneath(sub, "big")
    try:
        assert os.read(fd, 10) == b"x" * 10
    finally:
        os.close(fd)


@pytest.mark.parametrize("swapped", ["a", "a/b"])
def test_a_kernel_swapping_folders_for_links_never_gets_another_students_file_read(tree, swapped):
    """One thread reads ``a/b/file`` 2,000 times (or more) while another keeps swapping ``a`` (or ``a/b``) for a
    link to a folder outside holding a secret file: every read returns the student's file or fails, never the
    secret."""
    sub, outside = tree
    target = sub / swapped
    link = sub / "swap_link"
    os.symlink(outside if swapped == "a" else outside / "b", link)
    aside = target.with_name(target.name + "_aside")
    stop = threading.Event()
    swaps = [0]

    def swapper():
        while not stop.is_set():
            os.rename(target, aside)  # the folder goes...
            os.rename(link, target)  # ...a link takes its name...
            os.rename(target, link)
            os.rename(aside, target)  # ...and the folder comes back
            swaps[0] += 1

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    got = {"real": 0, "refused": 0}
    # 2,000 reads, and more until both sides of the race were met (how the threads interleave varies with the load)
    deadline = time.monotonic() + 60
    try:
        while sum(got.values()) < 2000 or (not (got["real"] and got["refused"]) and time.monotonic() < deadline):
            try:
                data = read_beneath(sub, "a/b/file", 1 << 20)
            except (OSError, ValueError):
                got["refused"] += 1
                continue
            assert data != SECRET, "read another student's file through a swapped link"
            assert data == REAL
            got["real"] += 1
    finally:
        stop.set()
        thread.join()
    assert swaps[0] > 50, swaps  # the race really ran
    assert got["real"] > 0 and got["refused"] > 0, got  # both sides of the race were met


def test_the_checks_reader_keeps_its_messages(tree):
    """``results_checks.read_student_file`` is a thin wrapper: same reader, the hidden checks' messages."""
    from course.grading.checks.results_checks import read_student_file
    from course.grading.student_client import CheckFailed

    sub, outside = tree
    assert read_student_file(sub / "a" / "b" / "file", folder=sub) == REAL
    assert read_student_file(sub / "a" / "b" / "file") == REAL
    with pytest.raises(CheckFailed, match="a_link is a link, not a folder of the submission"):
        read_student_file(sub / "a_link" / "b" / "file", folder=sub)
    os.symlink(outside / "file", sub / "a" / "b" / "leaf")
    with pytest.raises(CheckFailed, match="b/leaf is missing or not a plain file"):
        read_student_file(sub / "a" / "b" / "leaf", folder=sub)
    with pytest.raises(CheckFailed, match="missing or not a plain file"):
        read_student_file(sub / "a" / "b" / "nope", folder=sub)
    with pytest.raises(CheckFailed, match="file is larger than 0 MB"):
        read_student_file(sub / "a" / "b" / "file", 4, folder=sub)
    os.mkfifo(sub / "a" / "fifo")
    with pytest.raises(CheckFailed, match="fifo is not a plain file"):
        read_student_file(sub / "a" / "fifo", folder=sub)
    with pytest.raises(CheckFailed):  # outside the submission folder
        read_student_file(outside / "file", folder=sub)
