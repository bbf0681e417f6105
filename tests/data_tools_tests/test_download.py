"""`python -m data_tools download` against a real HTTP server on 127.0.0.1 (no test touches the internet).

The server (ThreadingHTTPServer on port 0, in a thread) serves small zip/tar archives built here, honours
``Range: bytes=N-`` with 206 (or ignores it, on request), can cut the connection after N bytes of the first
response for a file, and logs every request with its Range header.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import random
import shutil
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from data_tools.__main__ import main
from data_tools.fetch import parse_content_range
from data_tools.sources import DEFAULT_CONFIG, load_config


# ------------------------------------------------------------------------------------------- archives

def _payload(seed: int, n: int) -> bytes:
    """Incompressible bytes, so that archive sizes follow the content sizes."""
    return random.Random(seed).randbytes(n)


def make_zip(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


TRAIN_HR = {"DIV2K_train_HR/0001.png": _payload(1, 150_000), "DIV2K_train_HR/0002.png": _payload(2, 120_000)}
TRAIN_LR = {"DIV2K_train_LR_bicubic/X4/0001x4.png": _payload(3, 9_000),
            "DIV2K_train_LR_bicubic/X4/0002x4.png": _payload(4, 7_500)}
BENCH = {"benchmark/Set5/HR/baby.png": _payload(5, 5_000), "benchmark/Set5/LR_bicubic/X4/babyx4.png": _payload(6, 400),
         "benchmark/Set14/HR/comic.png": _payload(7, 3_000), "benchmark/README.txt": b"extra, not yielded\n"}
ARCHIVES = {
    "DIV2K_train_HR.zip": make_zip(TRAIN_HR),
    "DIV2K_train_LR_bicubic_X4.zip": make_zip(TRAIN_LR),
    "benchmark.tar": make_tar(BENCH),
    "benchmark.tar.gz": make_tar(BENCH, "w:gz"),
}
# name -> (file, extract_to, yields, files expected inside the data folder)
ENTRIES = {
    "DIV2K_train_HR": ("DIV2K_train_HR.zip", "DIV2K", ["DIV2K_train_HR"],
                       {f"DIV2K/{k}": v for k, v in TRAIN_HR.items()}),
    "DIV2K_train_LR_bicubic_X4": ("DIV2K_train_LR_bicubic_X4.zip", "DIV2K", ["DIV2K_train_LR_bicubic/X4"],
                                  {f"DIV2K/{k}": v for k, v in TRAIN_LR.items()}),
    "benchmark": ("benchmark.tar", ".", ["benchmark/Set5", "benchmark/Set14"],
                  {k: v for k, v in BENCH.items() if "/Set" in k}),
    "benchmark_gz": ("benchmark.tar.gz", "bench_gz", ["benchmark/Set5", "benchmark/Set14"],
                     {f"bench_gz/{k}": v for k, v in BENCH.items() if "/Set" in k}),
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------- server

class ArchiveServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (name -> bytes); ``cut_after[name] = N`` sends only N bytes of the first response for
    ``name``, then closes the connection; ``honor_range = False`` answers 200 with the whole file to a Range."""

    daemon_threads = False  # server_close() joins every handler thread

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ArchiveHandler)
        self.files: dict[str, bytes] = dict(ARCHIVES)
        self.cut_after: dict[str, int] = {}
        self.honor_range = True
        self.content_type: dict[str, str] = {}
        self.requests: list[tuple[str, str | None, str | None]] = []  # (path, Range, User-Agent)

    def url(self, filename: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{filename}"


class ArchiveHandler(http.server.BaseHTTPRequestHandler):
    server: ArchiveServer

    def log_message(self, format, *args):  # keep the test output clean
        pass

    def do_GET(self) -> None:
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range"), self.headers.get("User-Agent")))
        data = srv.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404, "Not Found")
            return
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and srv.honor_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", srv.content_type.get(self.path.lstrip("/"), "application/octet-stream"))
        self.end_headers()
        cut = srv.cut_after.pop(self.path.lstrip("/"), None)
        if cut is not None:
            body = body[:cut]
            self.close_connection = True
        self.wfile.write(body)
        self.wfile.flush()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """A proxy from the environment must not see requests to 127.0.0.1."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")


@pytest.fixture
def server():
    before = set(threading.enumerate())
    srv = ArchiveServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)
        # (tqdm's own process-wide monitor thread may appear; it is not the server's)
        leftover = [t for t in threading.enumerate() if t not in before and t.name != "tqdm_monitor"]
        assert not leftover, f"threads left running: {leftover}"


@pytest.fixture
def dead_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return lambda filename: f"http://127.0.0.1:{port}/{filename}"


def write_config(path: Path, url_of, names: list[str], **fields) -> Path:
    """A config listing ``names`` (keys of ENTRIES); ``fields[name]`` overrides keys of that entry."""
    archives = []
    for name in names:
        filename, extract_to, yields, _ = ENTRIES[name]
        entry = {"name": name, "url": url_of(filename), "size": None, "sha256": None,
                 "extract_to": extract_to, "yields": yields}
        entry.update(fields.get(name, {}))
        archives.append(entry)
    path.write_text(json.dumps({"archives": archives}))
    return path


def cli(data_dir: Path, config: Path, *extra: str) -> int:
    return main(["download", "--data-dir", str(data_dir), "--config", str(config), "--retry-wait", "0", *extra])


def assert_extracted(data_dir: Path, name: str) -> None:
    for rel, content in ENTRIES[name][3].items():
        assert (data_dir / rel).read_bytes() == content, rel


def assert_nothing_left(data_dir: Path, name: str) -> None:
    """No archive, no .part, no extracted folder, no temporary folder."""
    filename, extract_to, yields, _ = ENTRIES[name]
    assert not (data_dir / "downloads" / filename).exists()
    assert not (data_dir / "downloads" / (filename + ".part")).exists()
    for y in yields:
        assert not (data_dir / extract_to / y).exists()
    assert not list(data_dir.glob(".extract-*"))


def record(data_dir: Path) -> dict:
    return json.loads((data_dir / "downloads" / "checksums.json").read_text())["files"]


# ---------------------------------------------------------------------------------------------- tests

def test_happy_path_zip_tar_targz(server, tmp_path, capsys):
    data = tmp_path / "data"
    names = list(ENTRIES)
    config = write_config(tmp_path / "sources.json", server.url, names,
                          DIV2K_train_HR={"size": len(ARCHIVES["DIV2K_train_HR.zip"]),
                                          "sha256": sha(ARCHIVES["DIV2K_train_HR.zip"])})
    assert cli(data, config) == 0
    for name in names:
        assert_extracted(data, name)
    assert not (data / "benchmark" / "README.txt").exists(), "only the yielded folders are moved into place"
    assert not list(data.glob(".extract-*"))
    rec = record(data)
    for name in names:
        filename = ENTRIES[name][0]
        assert rec[filename]["sha256"] == sha(ARCHIVES[filename])
        assert rec[filename]["size"] == len(ARCHIVES[filename])
        assert (data / "downloads" / filename).read_bytes() == ARCHIVES[filename]
    assert rec["benchmark.tar"]["extracted"] == ["benchmark/Set5", "benchmark/Set14"]
    assert all(ua and ua.startswith("sr-course-kit") for _, _, ua in server.requests)
    assert "all 4 archive(s) present" in capsys.readouterr().out


def test_rerun_downloads_and_extracts_nothing(server, tmp_path, capsys):
    data = tmp_path / "data"
    config = write_config(tmp_path / "sources.json", server.url, ["DIV2K_train_HR", "benchmark"])
    assert cli(data, config) == 0
    count = len(server.requests)
    marker = data / "DIV2K" / "DIV2K_train_HR" / "0001.png"
    mtime = marker.stat().st_mtime_ns
    capsys.readouterr()
    assert cli(data, config) == 0
    assert len(server.requests) == count
    assert marker.stat().st_mtime_ns == mtime
    out = capsys.readouterr().out
    assert "DIV2K_train_HR: already there (DIV2K/DIV2K_train_HR)" in out
    assert "benchmark: already there" in out


@pytest.mark.parametrize("honor_range", [True, False], ids=["206-append", "200-restart"])
def test_resume_after_cut_connection_automatic_retry(server, tmp_path, capsys, honor_range):
    data = tmp_path / "data"
    filename = "DIV2K_train_HR.zip"
    server.cut_after[filename] = 70_000
    server.honor_range = honor_range
    config = write_config(tmp_path / "sources.json", server.url, ["DIV2K_train_HR"])
    assert cli(data, config, "--retries", "2") == 0
    assert [(p, r) for p, r, _ in server.requests] == [(f"/{filename}", None), (f"/{filename}", "bytes=70000-")]
    assert (data / "downloads" / filename).read_bytes() == ARCHIVES[filename]
    assert not (data / "downloads" / (filename + ".part")).exists()
    assert_extracted(data, "DIV2K_train_HR")
    assert record(data)[filename]["sha256"] == sha(ARCHIVES[filename])
    err = capsys.readouterr().err
    assert "the connection closed after 70000 of" in err and "resuming at byte 70000" in err
    assert ("starting again from zero" in err) is not honor_range


def test_resume_on_rerun_after_cut_connection(server, tmp_path, capsys):
    data = tmp_path / "data"
    filename = "DIV2K_train_HR.zip"
    server.cut_after[filename] = 50_000
    config = write_config(tmp_path / "sources.json", server.url, ["DIV2K_train_HR"])
    assert cli(data, config, "--retries", "0") == 1
    part = data / "downloads" / (filename + ".part")
    assert part.stat().st_size == 50_000
    err = capsys.readouterr().err
    assert f"could not download {filename}" in err and "50000 bytes received so far are kept" in err
    assert not (data / "DIV2K").exists()

    assert cli(data, config, "--retries", "0") == 0
    assert server.requests[-1][1] == "bytes=50000-"
    assert (data / "downloads" / filename).read_bytes() == ARCHIVES[filename]
    assert not part.exists()
    assert_extracted(data, "DIV2K_train_HR")


def test_complete_part_file_is_finished_with_416(server, tmp_path):
    """A .part that already holds the whole file (size unknown to the config): the server answers 416."""
    data = tmp_path / "data"
    filename = "DIV2K_train_HR.zip"
    (data / "downloads").mkdir(parents=True)
    (data / "downloads" / (filename + ".part")).write_bytes(ARCHIVES[filename])
    config = write_config(tmp_path / "sources.json", server.url, ["DIV2K_train_HR"])
    assert cli(data, config) == 0
    assert [r for _, r, _ in server.requests] == [f"bytes={len(ARCHIVES[filename])}-"]
    assert_extracted(data, "DIV2K_train_HR")


def test_web_page_instead_of_archive(server, tmp_path, capsys):
    data = tmp_path / "data"
    server.content_type["benchmark.tar"] = "text/html; charset=utf-8"
    config = write_config(tmp_path / "sources.json", server.url, ["benchmark"])
    assert cli(data, config) == 1
    err = capsys.readouterr().err
    assert "could not download benchmark.tar" in err and "sent a web page instead of the archive" in err
    assert len(server.requests) == 1, "not retried"
    assert_nothing_left(data, "benchmark")


def test_sha256_mismatch_is_a_clear_error_and_leaves_nothing(server, tmp_path, capsys):
    data = tmp_path / "data"
    wrong = "0" * 64
    config = write_config(tmp_path / "sources.json", server.url, ["DIV2K_train_HR"],
                          DIV2K_train_HR={"sha256": wrong})
    assert cli(data, config) == 1
    err = capsys.readouterr().err
    path = data.absolute() / "downloads" / "DIV2K_train_HR.zip"
    assert f"sha256 mismatch for {path}: expected {wrong}" in err
    assert f"got {sha(ARCHIVES['DIV2K_train_HR.zip'])}" in err
    assert "Traceback" not in err
    assert_nothing_left(data, "DIV2K_train_HR")
    assert not (data / "DIV2K").exists()


def test_recorded_sha256_is_checked_by_later_downloads(server, tmp_path, capsys):
    data = tmp_path / "data"
    config = write_config(tmp_path / "sources.json", server.url, ["benchmark"])
    assert cli(data, config, "--delete-archives") == 0
    assert not (data / "downloads" / "benchmark.tar").exists()
    good = sha(ARCHIVES["benchmark.tar"])
    assert record(data)["benchmark.tar"]["sha256"] == good
    # the dataset is deleted and the server now sends another file under the same name
    shutil.rmtree(data / "benchmark")
    server.files["benchmark.tar"] = make_tar({**BENCH, "benchmark/Set5/HR/baby.png": b"changed"})
    capsys.readouterr()
    assert cli(data, config) == 1
    err = capsys.readouterr().err
    assert f"expected {good}" in err and "checksums.json" in err
    assert_nothing_left(data, "benchmark")


def test_size_mismatch_stops_before_downloading(server, tmp_path, capsys):
    data = tmp_path / "data"
    config = write_config(tmp_path / "sources.json", server.url, ["DIV2K_train_HR"], DIV2K_train_HR={"size": 123})
    assert cli(data, config) == 1
    err = capsys.readouterr().err
    assert f"serves {len(ARCHIVES['DIV2K_train_HR.zip'])} bytes" in err and "should have 123" in err
    assert_nothing_left(data, "DIV2K_train_HR")


def test_corrupt_zip_member_is_named(server, tmp_path, capsys):
    data = tmp_path / "data"
    files = {"DIV2K_train_HR/0001.png": b"A" * 5000, "DIV2K_train_HR/0002.png": b"B" * 5000}
    blob = bytearray(make_zip(files, zipfile.ZIP_STORED))
    at = blob.index(b"B" * 5000) + 2500
    blob[at:at + 4] = b"XXXX"  # damage the stored data of the second member: its CRC-32 no longer matches
    server.files["DIV2K_train_HR.zip"] = bytes(blob)
    config = write_config(tmp_path / "sources.json", server.url, ["DIV2K_train_HR"])
    assert cli(data, config) == 1
    err = capsys.readouterr().err
    assert "DIV2K_train_HR.zip is corrupt: member 'DIV2K_train_HR/0002.png'" in err
    assert "CRC" in err and "Traceback" not in err
    assert_nothing_left(data, "DIV2K_train_HR")


def test_truncated_tar_gz_is_a_clear_error(server, tmp_path, capsys):
    data = tmp_path / "data"
    server.files["benchmark.tar.gz"] = ARCHIVES["benchmark.tar.gz"][:-200]
    config = write_config(tmp_path / "sources.json", server.url, ["benchmark_gz"])
    assert cli(data, config) == 1
    err = capsys.readouterr().err
    assert "benchmark.tar.gz is corrupt" in err and "Traceback" not in err
    assert_nothing_left(data, "benchmark_gz")
    assert not (data / "bench_gz").exists() or not any((data / "bench_gz").iterdir())


def test_archive_without_the_configured_folder(server, tmp_path, capsys):
    data = tmp_path / "data"
    config = write_config(tmp_path / "sources.json", server.url, ["benchmark"],
                          benchmark={"yields": ["benchmark/Set5", "benchmark/Urban100"]})
    assert cli(data, config) == 1
    err = capsys.readouterr().err
    assert "benchmark.tar has no folder benchmark/Urban100" in err and "benchmark/" in err
    assert not (data / "benchmark").exists() and not list(data.glob(".extract-*"))
    assert (data / "downloads" / "benchmark.tar").exists(), "a good archive with an unexpected layout is kept"


@pytest.mark.parametrize("failure", ["refused", "http404"])
def test_unreachable_source_gives_instructions_and_others_go_on(server, dead_url, tmp_path, capsys, failure):
    data = tmp_path / "data"
    url_of = dead_url if failure == "refused" else (lambda f: server.url("missing/" + f))
    config = write_config(tmp_path / "sources.json", url_of, ["DIV2K_train_HR", "benchmark"],
                          benchmark={"url": server.url("benchmark.tar")})
    assert cli(data, config) == 1
    err = capsys.readouterr().err
    url = url_of("DIV2K_train_HR.zip")
    place = data.absolute() / "downloads" / "DIV2K_train_HR.zip"
    reason = "connection refused" if failure == "refused" else "HTTP 404 Not Found"
    assert (f"could not download DIV2K_train_HR.zip from {url} ({reason}). Download it by hand and place it at "
            f"{place}, then run the command again") in err
    assert "Traceback" not in err
    assert "1 of 2 archive(s) missing" in err
    assert_extracted(data, "benchmark")  # the other archive went on
    assert not (data / "DIV2K").exists()


def test_archive_placed_by_hand_is_used_offline(dead_url, tmp_path, capsys):
    data = tmp_path / "data"
    (data / "downloads").mkdir(parents=True)
    (data / "downloads" / "DIV2K_train_HR.zip").write_bytes(ARCHIVES["DIV2K_train_HR.zip"])
    config = write_config(tmp_path / "sources.json", dead_url, ["DIV2K_train_HR"])
    assert cli(data, config) == 0
    assert_extracted(data, "DIV2K_train_HR")
    rec = record(data)["DIV2K_train_HR.zip"]
    assert rec["sha256"] == sha(ARCHIVES["DIV2K_train_HR.zip"])
    assert rec["source"] == "found in the downloads folder"
    assert "no network needed" in capsys.readouterr().out


def test_cli_options_only_url_and_sr_data_dir(server, dead_url, tmp_path, monkeypatch, capsys):
    data = tmp_path / "from_env"
    monkeypatch.setenv("SR_DATA_DIR", str(data))
    config = write_config(tmp_path / "sources.json", dead_url, ["DIV2K_train_HR", "DIV2K_train_LR_bicubic_X4",
                                                                 "benchmark"],
                          DIV2K_train_LR_bicubic_X4={"sha256": "f" * 64})
    argv = ["download", "--config", str(config), "--no-progress", "--retry-wait", "0",
            "--only", "DIV2K_train_LR_bicubic_X4,benchmark",
            "--url", f"benchmark={server.url('benchmark.tar.gz')}",
            "--url", f"DIV2K_train_LR_bicubic_X4={server.url('DIV2K_train_LR_bicubic_X4.zip')}"]
    assert main(argv) == 0
    assert_extracted(data, "DIV2K_train_LR_bicubic_X4")  # --url drops the configured (here wrong) sha256
    assert_extracted(data, "benchmark")  # a .tar.gz given by --url for an archive configured as .tar
    assert not (data / "DIV2K" / "DIV2K_train_HR").exists()  # not selected
    assert {p for p, _, _ in server.requests} == {"/benchmark.tar.gz", "/DIV2K_train_LR_bicubic_X4.zip"}
    assert set(record(data)) == {"benchmark.tar.gz", "DIV2K_train_LR_bicubic_X4.zip"}
    err = capsys.readouterr().err
    assert "%|" not in err, "--no-progress shows no bar"


@pytest.mark.parametrize("args, message", [
    (["--only", "nope"], "--only: unknown archive(s) nope; the names are: DIV2K_train_HR"),
    (["--url", "nope=http://127.0.0.1:9/x.zip"], "no archive named 'nope'"),
    (["--url", "DIV2K_train_HR"], "--url expects NAME=URL"),
])
def test_bad_options_exit_2(tmp_path, dead_url, capsys, args, message):
    config = write_config(tmp_path / "sources.json", dead_url, ["DIV2K_train_HR"])
    assert cli(tmp_path / "data", config, *args) == 2
    assert message in capsys.readouterr().err


def test_bad_config_files_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"archives": [{"name": "x", "url": "http://h/x.zip", "yields": ["../up"]}]}')
    assert cli(tmp_path / "data", bad) == 2
    assert "must stay inside the data folder" in capsys.readouterr().err
    bad.write_text('{"archives": [{"name": "x", "url": "http://h/x.zip", "yields": ["x"], "sha265": null}]}')
    assert cli(tmp_path / "data", bad) == 2
    assert "unknown key(s) sha265" in capsys.readouterr().err
    assert cli(tmp_path / "data", tmp_path / "absent.json") == 2
    assert "does not exist" in capsys.readouterr().err


def test_shipped_sources_json():
    archives = {a.name: a for a in load_config(DEFAULT_CONFIG)}
    base = "http://data.vision.ee.ethz.ch/cvl/DIV2K/"
    for name in ("DIV2K_train_HR", "DIV2K_valid_HR", "DIV2K_train_LR_bicubic_X4", "DIV2K_valid_LR_bicubic_X4"):
        assert archives[name].url == base + name + ".zip"
        assert archives[name].filename == name + ".zip"
    assert archives["DIV2K_train_LR_bicubic_X4"].targets(Path("d")) == [Path("d/DIV2K/DIV2K_train_LR_bicubic/X4")]
    bench = archives["benchmark"]
    assert bench.url.endswith((".tar", ".tar.gz", ".zip"))
    assert [y.split("/")[-1] for y in bench.yields] == ["Set5", "Set14", "B100", "Urban100"]


def test_parse_content_range():
    assert parse_content_range("bytes 100-199/200") == (100, 200)
    assert parse_content_range("bytes */200") == (None, 200)
    assert parse_content_range(None) == (None, None)
