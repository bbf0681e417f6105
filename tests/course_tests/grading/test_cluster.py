"""The pieces of grading on a Dask cluster that need no cluster: what travels (a hand-in as a tar, unpacked
whole or not at all), what a worker checks before it grades (its course folder, its gradebook, one worker per
folder, the kit's fingerprint), the TLS files, and the refusals of the commands. The cluster itself, with a worker
killed mid-submission, is tested with the PostgreSQL gradebook (``test_gradebook_server``)."""
from __future__ import annotations

import io
import os
import tarfile
import types
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install -e '.[test]')")

from course.grading.cluster_worker import CourseOnWorker, kit_fingerprint, pack_tree, unpack_tree  # noqa: E402
from course.grading.contract import CLUSTER_WORKER_PLUGIN, GRADEBOOK_URL_ENV  # noqa: E402
from course.grading.errors import GradingError  # noqa: E402

PG_URL = "postgresql+psycopg2://gradebook@/gradebook?host=/nowhere"


def _course(root: Path) -> Path:
    (root / "source" / "superres").mkdir(parents=True)
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    (root / "source" / "superres" / "01_models.ipynb").write_text("{}")
    return root


def _worker(name="w1"):
    return types.SimpleNamespace(name=name, state=types.SimpleNamespace(nthreads=2))


def test_a_hand_in_travels_whole_and_replaces_the_folder(tmp_path):
    src = tmp_path / "src"
    (src / "results").mkdir(parents=True)
    (src / "01_models.ipynb").write_text("notebook")
    (src / "results" / "table.csv").write_bytes(b"a,b\n1,2\n")
    os.symlink("/etc/passwd", src / "link")  # (never followed, never sent)
    data = pack_tree(src)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "stale.txt").write_text("from an earlier run")
    unpack_tree(data, dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["01_models.ipynb", "results",
                                                                        "results/table.csv"]
    assert (dest / "results" / "table.csv").read_bytes() == b"a,b\n1,2\n"


@pytest.mark.parametrize("member", ["../outside.txt", "link"])
def test_an_archive_with_a_path_outside_or_a_link_leaves_the_folder_as_it_was(tmp_path, member):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "kept.txt").write_text("kept")
    with pytest.raises((GradingError, tarfile.TarError)):
        unpack_tree(buffer.getvalue(), dest)
    assert [p.name for p in dest.iterdir()] == ["kept.txt"] and not (tmp_path / "outside.txt").exists()
    assert not list(tmp_path.glob(".dest.incoming"))


def test_the_fingerprint_follows_the_source_notebooks(tmp_path):
    a, b = _course(tmp_path / "a"), _course(tmp_path / "b")
    assert kit_fingerprint(a, "superres") == kit_fingerprint(b, "superres")
    (b / "source" / "superres" / "01_models.ipynb").write_text('{"changed": 1}')
    assert kit_fingerprint(a, "superres") != kit_fingerprint(b, "superres")


def test_a_worker_refuses_a_folder_without_a_course_or_with_a_sqlite_gradebook(tmp_path, monkeypatch):
    monkeypatch.delenv(GRADEBOOK_URL_ENV, raising=False)
    plugin = CourseOnWorker(tmp_path / "nothing")
    plugin.setup(_worker())
    assert "no nbgrader_config.py" in plugin.problem and "--course-dir" in plugin.problem
    course = _course(tmp_path / "course")
    plugin = CourseOnWorker(course)
    plugin.setup(_worker())
    assert "SQLite" in plugin.problem and GRADEBOOK_URL_ENV in plugin.problem
    with pytest.raises(GradingError, match="cannot grade"):
        plugin.grade("ada", "superres", b"", {})
    assert plugin.status("superres")["problem"] == plugin.problem


def test_one_worker_process_per_course_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(GRADEBOOK_URL_ENV, PG_URL)
    course = _course(tmp_path / "course")
    first, second = CourseOnWorker(course), CourseOnWorker(course)
    first.setup(_worker("w1"))
    try:
        assert first.problem is None
        second.setup(_worker("w2"))
        assert "another worker grades in" in second.problem
    finally:
        first.teardown(None)
    third = CourseOnWorker(course)
    third.setup(_worker("w3"))
    try:
        assert third.problem is None, "the folder is free again once its worker is gone"
        with pytest.raises(GradingError, match="another version of the kit"):
            third.grade("ada", "superres", b"", {"fingerprint": "0" * 64})
    finally:
        third.teardown(None)


def test_the_worker_says_how_to_start_it_when_it_has_no_course(monkeypatch):
    from course.grading import cluster_worker

    fake = types.SimpleNamespace(name="bare", plugins={})
    status = cluster_worker.worker_status("superres", dask_worker=fake)
    assert "python -m course.cluster worker" in status["problem"] and "bare" in status["worker"]
    fake.plugins[CLUSTER_WORKER_PLUGIN] = "anything"
    assert cluster_worker._course_on_worker(fake) == "anything"


def test_credentials_are_private_and_refused_when_missing_or_open(tmp_path):
    from course.grading.cluster import credentials_dir, make_credentials, security

    with pytest.raises(GradingError, match="python -m course.cluster credentials"):
        credentials_dir(tmp_path, tmp_path / "none")
    folder = make_credentials(tmp_path / "tls")
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {"ca.pem": "0o600",
                                                                                  "key.pem": "0o600"}
    assert credentials_dir(tmp_path, folder) == folder
    assert security(folder).require_encryption
    (folder / "key.pem").chmod(0o644)
    with pytest.raises(GradingError, match="chmod 600"):
        credentials_dir(tmp_path, folder)


def test_grading_on_a_cluster_refuses_a_sqlite_gradebook_before_anything(tmp_path, monkeypatch):
    from course.grade import grade

    monkeypatch.delenv(GRADEBOOK_URL_ENV, raising=False)
    course = _course(tmp_path / "course")
    with pytest.raises(GradingError, match="PostgreSQL"):
        grade("superres", course, cluster="tls://127.0.0.1:1", progress=False, log=lambda *a: None)
    assert not (course / "course").exists(), "nothing collected or written"


def test_the_cluster_commands(tmp_path, capsys):
    from course.cluster import main, worker_command

    command = worker_command("tls://h:8786", tmp_path, tmp_path / "course", 3, 1, ["--no-nanny"])
    assert command[1:4] == ["worker", "tls://h:8786", "--nworkers"] and "--tls-key" in command
    assert command[command.index("--preload") + 1] == "course.grading.cluster_worker"
    assert command[command.index("--nthreads") + 1] == "3" and "--no-nanny" in command
    assert main(["credentials", "--dir", str(tmp_path / "tls")]) == 0
    assert main(["worker", "tls://h:8786", "--dir", str(tmp_path / "tls"), "--course-dir",
                 str(tmp_path / "nothing")]) == 2
    assert "has no nbgrader_config.py" in capsys.readouterr().err
    assert main(["scheduler", "--dir", str(tmp_path / "none")]) == 2
    assert "python -m course.cluster credentials" in capsys.readouterr().err
