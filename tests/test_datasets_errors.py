"""Downloads under bad input: oversized downloads and archive members, zip bombs, and table entries
whose names would write outside the data root are refused, and nothing is left behind."""
from __future__ import annotations

import http.server
import io
import json
import threading
import time
import zipfile

import pytest
import test_datasets
from test_datasets import QUIET, archive_source, leftovers, make_targz, make_zip, png_bytes

from srlib import datasets as dl
from srlib.datasets import archives, fetch, tables

serve = test_datasets.serve  # the download tests' local HTTP server (a fixture)


def zip_bomb(name: str, size: int) -> bytes:
    """A zip whose one member inflates to ``size`` zero bytes from a few kilobytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, b"\0" * size)
    return buf.getvalue()


def install(sources, root, checksums=None):
    return dl.download("S", root, sources=sources, checksums=checksums or {}, **QUIET)


# ---------------------------------------------------------------------------- archive members


@pytest.mark.parametrize("pack", [make_zip, make_targz], ids=["zip", "tar.gz"])
def test_a_member_larger_than_an_image_may_be_is_refused(serve, tmp_path, monkeypatch, pack):
    monkeypatch.setattr(tables, "MAX_IMAGE_BYTES", 1000)
    server = serve({"s.arc": pack({"S/a.png": png_bytes(1), "S/b.png": b"\x89PNG" + b"x" * 5000})})
    sources = {"S": archive_source(server.url("s.arc"), filename="s.arc", member_dir="S", images=2)}
    with pytest.raises(dl.UnsafeArchiveError, match="S/b.png is larger than the 1,000 bytes an image may take"):
        install(sources, tmp_path / "root")
    assert leftovers(tmp_path / "root") == []  # nothing installed, the bad archive removed


def test_a_zip_bomb_stops_at_the_limit(serve, tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "MAX_IMAGE_BYTES", 64 * 1024)
    written = []
    copy = archives._copy_at_most

    def watch(src, out, limit):
        copied = copy(src, out, limit)
        written.append(out.tell())
        return copied

    monkeypatch.setattr(archives, "_copy_at_most", watch)
    bomb = zip_bomb("S/a.png", 20 * 1024 * 1024)
    assert len(bomb) < 100_000
    server = serve({"s.zip": bomb})
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=1)}
    with pytest.raises(dl.UnsafeArchiveError, match="larger than the 65,536 bytes"):
        install(sources, tmp_path / "root")
    assert written and max(written) <= 64 * 1024  # stopped at the limit, not after inflating 20 MB
    assert leftovers(tmp_path / "root") == []


def test_the_size_of_a_known_image_bounds_its_member(serve, tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "MB", 0)  # no allowance for metadata: 8 bytes a pixel exactly
    server = serve({"s.zip": make_zip({"S/a.png": b"\x89PNG" + b"x" * 500})})
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=1)}
    checksums = {"S": {"a.png": {"width": 8, "height": 6, "sha256": None, "pixel_sha256": None}}}
    with pytest.raises(dl.UnsafeArchiveError, match="larger than the 384 bytes an image may take"):
        install(sources, tmp_path / "root", checksums)


def test_the_images_of_a_set_together_are_capped(serve, tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "MAX_EXTRACTED_BYTES", 250)
    images = {f"S/{c}.png": png_bytes(i) for i, c in enumerate("abc")}
    assert all(80 < len(v) < 125 for v in images.values())  # two fit, the third does not
    server = serve({"s.zip": make_zip(images)})
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=3)}
    with pytest.raises(dl.UnsafeArchiveError, match="its images add up to more than 250 bytes"):
        install(sources, tmp_path / "root")
    assert leftovers(tmp_path / "root") == []


def test_install_from_a_hand_downloaded_bomb_keeps_the_archive(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "MAX_IMAGE_BYTES", 1000)
    archive = tmp_path / "S.zip"
    archive.write_bytes(zip_bomb("S/a.png", 50_000))
    before = archive.read_bytes()
    sources = {"S": archive_source("http://127.0.0.1:9/s.zip", filename="s.zip", member_dir="S", images=1)}
    with pytest.raises(dl.UnsafeArchiveError, match="larger than the 1,000 bytes"):
        dl.install_from_archive("S", archive, tmp_path / "root", sources=sources, checksums={}, log=None)
    assert archive.read_bytes() == before and leftovers(tmp_path / "root") == []


# ---------------------------------------------------------------------------- downloads larger than expected


def test_an_announced_size_over_the_limit_stops_before_the_body(serve, tmp_path):
    server = serve({"s.zip": make_zip({"S/a.png": png_bytes(1)}) + b"\0" * 200_000})
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=1,
                                   max_bytes=10_000)}
    with pytest.raises(dl.DownloadError, match="is 2\\d\\d,\\d\\d\\d bytes, more than the 10,000 bytes expected"):
        install(sources, tmp_path / "root")
    assert leftovers(tmp_path / "root") == []


class _NoLength(http.server.BaseHTTPRequestHandler):
    """Answers with a body of ``size`` bytes and no Content-Length, as a streaming server may."""

    size = 2_000_000

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        try:
            for _ in range(self.size // 10_000):
                self.wfile.write(b"\0" * 10_000)
        except OSError:  # the client hung up: what a stopped download does
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def no_length_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoLength)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_a_download_without_a_size_stops_at_the_limit(no_length_server, tmp_path, monkeypatch):
    largest = []
    write = fetch._Capped.write

    def watch(self, chunk):
        write(self, chunk)
        largest.append(self.file.tell())

    monkeypatch.setattr(fetch._Capped, "write", watch)
    sources = {"S": archive_source(no_length_server + "s.zip", filename="s.zip", member_dir="S", images=1,
                                   max_bytes=100_000)}
    with pytest.raises(dl.DownloadError, match="sent more than the 100,000 bytes expected"):
        install(sources, tmp_path / "root")
    assert largest and max(largest) <= 100_000  # never more on disk than allowed
    assert leftovers(tmp_path / "root") == []


@pytest.mark.parametrize("facts,limit", [({}, 1000), ({"width": 8, "height": 6}, None)], ids=["unknown", "known"])
def test_a_file_by_file_image_larger_than_expected(serve, tmp_path, monkeypatch, facts, limit):
    if limit:
        monkeypatch.setattr(tables, "MAX_IMAGE_BYTES", limit)
    else:
        monkeypatch.setattr(tables, "MB", 0)
        limit = 8 * 8 * 6
    server = serve({"set/a.png": b"\x89PNG" + b"x" * 5000})
    sources = {"T": {"images": 1, "mirrors": [{"type": "files", "base_url": server.url("set/")}]}}
    checksums = {"T": {"a.png": {**facts, "sha256": None, "pixel_sha256": None}}}
    with pytest.raises(dl.DownloadError, match=f"more than the {limit:,} bytes expected for this image"):
        dl.download("T", tmp_path / "root", sources=sources, checksums=checksums, **QUIET)
    assert leftovers(tmp_path / "root") == []


@pytest.mark.parametrize("size,mirror,expected", [
    ("0.9 MB (5 files)", {}, int(4 * 0.9 * 2**20) + 100 * 2**20),
    ("~130 MB", {}, 4 * 130 * 2**20 + 100 * 2**20),
    ("3.5 GB", {}, int(4 * 3.5 * 2**30) + 100 * 2**20),
    ("tiny", {}, tables.MAX_DOWNLOAD_BYTES),
    ("~7 MB", {"max_bytes": 1_000_000_000}, 1_000_000_000),
])
def test_download_limits_follow_the_table(size, mirror, expected):
    assert tables._download_limit({"size": size}, mirror) == expected


def test_the_shared_archives_in_the_real_table_have_their_own_limit():
    for name, spec in dl.load_sources().items():
        for mirror in spec["mirrors"]:
            if mirror.get("filename") in ("benchmark.tar", "Set5_SR.zip"):
                assert mirror.get("max_bytes"), name


# ---------------------------------------------------------------------------- names in the table


@pytest.mark.parametrize("where,value", [
    ("rename", {"a.png": "../evil.png"}),
    ("rename", {"a.png": "/tmp/srlib-test-evil.png"}),
    ("rename", {"a.png": "sub/evil.png"}),
    ("rename", {"a.png": "..\\evil.png"}),
    ("rename", {"a.png": "C:evil.png"}),
    ("rename", {"a.png": ".hidden.png"}),
    ("rename", {"a.png": ""}),
    ("rename", {"a.png": None}),
    ("rename", {"a.png": 7}),
    ("rename", {"a.png": "x" * 300 + ".png"}),
    ("rename", ["a.png", "../evil.png"]),
    ("filename", ".."),
    ("filename", "sub/s.zip"),
    ("source_ext", "/../x"),
    ("set name", "../Evil"),
    ("set name", ".downloads"),
    ("file name", "../a.png"),
    ("file name", ".a.png"),
    ("names format", "../{:03d}.png"),
])
def test_table_names_that_escape_the_root_are_refused_before_anything_happens(serve, tmp_path, where, value):
    server = serve({"s.zip": make_zip({"S/a.png": png_bytes(1)})})
    name = value if where == "set name" else "S"
    spec = archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=1)
    checksums = {}
    if where in ("rename", "filename", "source_ext"):
        spec["mirrors"][0][where] = value
    elif where == "file name":
        checksums = {name: {value: {"width": 8, "height": 6, "sha256": None, "pixel_sha256": None}}}
    elif where == "names format":
        spec["names"] = {"format": value, "first": 1, "last": 1}
    root = tmp_path / "root"
    with pytest.raises(dl.UnsafeSourceError, match=f"refusing to install {name.replace('.', '[.]')}"):
        dl.download(name, root, sources={name: spec}, checksums=checksums, **QUIET)
    assert not root.exists() and server.requests == []


# ---------------------------------------------------------------------------- slow, stalled and misused


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Announces 100,000 bytes, then sends one byte every two seconds: never silent long enough for a
    socket timeout, and never done."""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100_000):
                self.wfile.write(b"\0")
                self.wfile.flush()
                if self.server.stop.wait(2.0):
                    return
        except OSError:  # the client hung up
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    httpd.daemon_threads, httpd.stop = True, threading.Event()
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()


def test_a_mirror_that_trickles_one_byte_every_two_seconds_times_out(trickle_server, tmp_path):
    sources = {"S": archive_source(trickle_server + "s.zip", filename="s.zip", member_dir="S", images=1)}
    started = time.monotonic()
    with pytest.raises(dl.NetworkError, match="stalled: [1-3] bytes arrived in [3-5] s") as stopped:
        dl.download("S", tmp_path / "root", sources=sources, checksums={}, **{**QUIET, "timeout": 3})
    assert time.monotonic() - started < 15  # a timeout of 3 s, and a byte every 2 s
    assert "run the same command again later, or give a longer --timeout" in str(stopped.value)
    assert leftovers(tmp_path / "root") == []  # the set is not installed


def test_a_stalled_download_from_the_command_line_is_one_line(trickle_server, tmp_path, capsys):
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps({"S": archive_source(trickle_server + "s.zip", filename="s.zip", member_dir="S",
                                                       images=1)}))
    code = dl.main(["S", "--root", str(tmp_path / "root"), "--sources", str(sources), "--timeout", "3",
                    "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "stalled" in err and "To install S by hand" in err


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_a_positive_number_is_refused(tmp_path, capsys, timeout):
    with pytest.raises(SystemExit) as exited:  # argparse: usage and one error line, exit code 2
        dl.main(["Set5", "--root", str(tmp_path), "--timeout", timeout])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "error: argument --timeout: expected a number of seconds above 0" in err
    assert "does not match" not in err


def test_a_timeout_of_zero_in_python_is_refused_before_any_download(tmp_path):
    with pytest.raises(ValueError, match="timeout must be a number of seconds above 0, got 0"):
        dl.download("Set5", tmp_path, **{**QUIET, "timeout": 0})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("under", [False, True], ids=["the root", "a folder above it"])
def test_a_root_that_is_a_file_is_one_line(tmp_path, capsys, under):
    blocker = tmp_path / "data"
    blocker.write_bytes(b"my notes")
    root = blocker / "sets" if under else blocker
    code = dl.main(["Set5", "--root", str(root), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{blocker} is a file, not a folder; give --root" in err
    assert blocker.read_bytes() == b"my notes"
    with pytest.raises(dl.DownloadError, match="is a file, not a folder"):
        dl.download("Set5", root, **QUIET)


class _TrickleAll(http.server.BaseHTTPRequestHandler):
    """Sends its whole answer, status line and headers included, one byte every two seconds."""

    def do_GET(self):  # noqa: N802
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
        try:
            for i in range(len(answer)):
                self.wfile.write(answer[i:i + 1])
                self.wfile.flush()
                if self.server.stop.wait(2.0):
                    return
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_a_mirror_that_trickles_even_its_headers_times_out(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleAll)
    httpd.daemon_threads, httpd.stop = True, threading.Event()
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/s.zip"
    try:
        started = time.monotonic()
        with pytest.raises(dl.NetworkError, match="stalled: the server's answer was not complete after 3 s"):
            dl.download("S", tmp_path / "root", sources={"S": archive_source(url, filename="s.zip", member_dir="S",
                                                                             images=1)},
                        checksums={}, **{**QUIET, "timeout": 3})
        assert time.monotonic() - started < 10
    finally:
        httpd.stop.set()
        httpd.shutdown()
        httpd.server_close()
    assert leftovers(tmp_path / "root") == []


def test_a_mirror_that_never_answers_times_out(tmp_path):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection (the kernel does) and never says a word
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/s.zip"
    try:
        started = time.monotonic()
        with pytest.raises(dl.NetworkError, match="timed out|not complete after 2 s"):
            dl.download("S", tmp_path / "root", sources={"S": archive_source(url, filename="s.zip", member_dir="S",
                                                                             images=1)},
                        checksums={}, **{**QUIET, "timeout": 2})
        assert time.monotonic() - started < 10
    finally:
        listener.close()


@pytest.mark.parametrize("option", ["--sources", "--checksums"])
def test_a_missing_table_is_named_with_its_option(tmp_path, capsys, option):
    code = dl.main(["Set5", "--root", str(tmp_path), option, str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{option} {tmp_path / 'nope'}: No such file or directory; give the path of a" in err
