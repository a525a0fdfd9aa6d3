"""Tests for srlib.datasets (and its two command lines) against a local HTTP server (127.0.0.1 only)."""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from srlib import data, files  # noqa: E402
from srlib import datasets as dl  # noqa: E402
from srlib.datasets import fetch, install, tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = [sys.executable, str(ROOT / "data_scripts" / "download.py")]
MODULE = [sys.executable, "-m", "srlib", "download"]

QUIET = dict(progress=False, log=None, timeout=5)


# --------------------------------------------------------------------------- helpers


def png_bytes(seed: int, size=(8, 6), fmt="PNG") -> bytes:
    w, h = size
    im = Image.new("RGB", size)
    im.putdata([((seed * 37 + x * 11) % 256, (seed * 91 + y * 7) % 256, (x * y + seed) % 256)
                for y in range(h) for x in range(w)])
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def make_targz(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalServer:
    """Serves in-memory files on 127.0.0.1 with optional Range support."""

    def __init__(self, files: dict[str, bytes], *, ranges=True, content_type="application/octet-stream"):
        self.files = dict(files)
        self.ranges = ranges
        self.content_type = content_type
        self.requests: list[tuple[str, str | None, int]] = []
        self.cut_after: dict[str, int] = {}  # path -> bytes to send before dropping the connection
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                path = self.path.lstrip("/")
                rng = self.headers.get("Range")
                if path not in owner.files:
                    owner.requests.append((path, rng, 404))
                    self.send_error(404)
                    return
                data = owner.files[path]
                total = len(data)
                status, start, end = 200, 0, total - 1
                if rng and owner.ranges:
                    m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
                    if_range = self.headers.get("If-Range")
                    if m and (if_range is None or if_range == '"v1"'):
                        start = int(m.group(1))
                        if start >= total:
                            owner.requests.append((path, rng, 416))
                            self.send_response(416)
                            self.send_header("Content-Range", f"bytes */{total}")
                            self.send_header("Content-Length", "0")
                            self.end_headers()
                            return
                        end = int(m.group(2)) if m.group(2) else total - 1
                        status = 206
                body = data[start:end + 1]
                owner.requests.append((path, rng, status))
                self.send_response(status)
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"v1"')
                if owner.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
                cut = owner.cut_after.pop(path, None)
                if cut is not None:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(files, **kw):
        s = LocalServer(files, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def closed_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def archive_source(url, *, filename, member_dir, images, **extra):
    mirror = {"type": "archive", "url": url, "filename": filename, "member_dir": member_dir,
              "sha256": None, "md5": None}
    mirror.update(extra)
    return {"description": "test set", "images": images, "size": "tiny", "mirrors": [mirror]}


def leftovers(root: Path) -> list[str]:
    """Everything under root except an empty .downloads folder."""
    if not root.exists():
        return []
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_dir() and p.name == install.DOWNLOADS_DIR and not any(p.iterdir()):
            continue
        out.append(str(p.relative_to(root)))
    return out


# --------------------------------------------------------------------------- the real tables


def test_real_tables_are_consistent():
    sources = dl.load_sources()
    required = ["Set5", "Set14", "BSD100", "Urban100", "T91", "BSD200", "General100",
                "DIV2K_train_HR", "DIV2K_valid_HR"]
    assert set(required) <= set(sources)
    checksums = dl.load_checksums()
    assert {k: len(v) for k, v in checksums.items()} == {"Set5": 5, "T91": 91, "BSD200": 200}
    assert set(checksums["Set5"]) == {"baby.png", "bird.png", "butterfly.png", "head.png", "woman.png"}
    for name, spec in sources.items():
        assert spec["mirrors"], name
        for m in spec["mirrors"]:
            url = m.get("url") or m.get("base_url")
            assert url.startswith(("http://", "https://")), (name, url)
            assert m["type"] in ("files", "archive")
            if m["type"] == "files":
                assert name in checksums, f"{name}: a file-by-file source needs checksums"
        expected = dl.expected_files(name, spec, checksums)
        if expected is not None:
            assert len(expected) == spec["images"], name
    for rows in checksums.values():
        for facts in rows.values():
            assert re.fullmatch(r"[0-9a-f]{64}", facts["sha256"])
            assert re.fullmatch(r"[0-9a-f]{64}", facts["pixel_sha256"])
            assert facts["width"] > 0 and facts["height"] > 0


def test_tables_ship_inside_the_package(tmp_path):
    folder = Path(data.__file__).parent / "data_sources"
    assert tables.TABLES == folder
    assert (folder / "sources.json").is_file() and (folder / "checksums.tsv").is_file()
    assert not (ROOT / "data_scripts" / "sources.json").exists()
    assert list(dl.SETS) == list(dl.load_sources())
    with pytest.raises(FileNotFoundError, match=re.escape(f"data set Set5 ({dl.SETS['Set5']}) not found")):
        data.load_set("Set5", root=tmp_path)  # the loader describes a missing set from the same table


@pytest.mark.parametrize("command", [SCRIPT, MODULE], ids=["script", "module"])
def test_help_exits_zero(command):
    proc = subprocess.run(command + ["--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for option in ("--list", "--root", "--from-archive", "--force"):
        assert option in proc.stdout


@pytest.mark.parametrize("command", [SCRIPT, MODULE], ids=["script", "module"])
def test_cli_list_runs(command):
    proc = subprocess.run(command + ["--list"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for name in ("Set5", "Set14", "BSD100", "Urban100", "T91", "BSD200", "General100",
                 "DIV2K_train_HR", "DIV2K_valid_HR"):
        assert name in proc.stdout
    assert "https://" in proc.stdout


def test_cli_rejects_unknown_name(capsys):
    assert dl.main(["NoSuchSet", "--root", "unused"]) == 2
    assert "unknown data set" in capsys.readouterr().err


# --------------------------------------------------------------------------- downloads


def test_good_zip_installs_and_verifies(serve, tmp_path):
    hr = {"a.png": png_bytes(1), "b.png": png_bytes(2), "c.png": png_bytes(3)}
    members = {f"Toy/HR/{k}": v for k, v in hr.items()}
    members["Toy/LR_bicubic/X2/a.png"] = png_bytes(9, (4, 3))  # must be ignored
    members["Toy/readme.txt"] = b"not an image"
    data = make_zip(members)
    server = serve({"toy.zip": data})
    sources = {"Toy": archive_source(server.url("toy.zip"), filename="toy.zip",
                                     member_dir="Toy/HR", images=3, sha256=sha(data))}
    checksums = {"Toy": {k: {"width": 8, "height": 6, "sha256": sha(v), "pixel_sha256": None}
                         for k, v in hr.items()}}
    root = tmp_path / "data"
    path = dl.download("Toy", root, sources=sources, checksums=checksums, **QUIET)
    assert path == root / "Toy"
    assert sorted(os.listdir(path)) == ["a.png", "b.png", "c.png"]
    for k, v in hr.items():
        assert (path / k).read_bytes() == v
    assert leftovers(root) == ["Toy", "Toy/a.png", "Toy/b.png", "Toy/c.png"]
    # A second run sees the installed copy and does not download again.
    n = len(server.requests)
    dl.download("Toy", root, sources=sources, checksums=checksums, **QUIET)
    assert len(server.requests) == n


def test_tar_gz_with_rename_and_count(serve, tmp_path):
    members = {
        "bench/image_SRF_2/img_001_SRF_2_HR.png": png_bytes(1),
        "bench/image_SRF_2/img_002_SRF_2_HR.png": png_bytes(2),
        "bench/image_SRF_2/img_001_SRF_2_LR.png": png_bytes(3, (4, 3)),
        "bench/image_SRF_2/img_002_SRF_2_LR.png": png_bytes(4, (4, 3)),
        "bench/image_SRF_3/img_001_SRF_3_HR.png": png_bytes(5),
    }
    server = serve({"bench.tar.gz": make_targz(members)})
    sources = {"Pair": archive_source(
        server.url("bench.tar.gz"), filename="bench.tar.gz", member_dir="image_SRF_2",
        images=2, pattern="*_HR.png",
        rename={"img_001_SRF_2_HR.png": "first.png", "img_002_SRF_2_HR.png": "second.png"})}
    path = dl.download("Pair", tmp_path, sources=sources, checksums={}, **QUIET)
    assert sorted(os.listdir(path)) == ["first.png", "second.png"]
    assert (path / "first.png").read_bytes() == members["bench/image_SRF_2/img_001_SRF_2_HR.png"]


def test_wrong_image_count_is_rejected(serve, tmp_path):
    server = serve({"t.zip": make_zip({"S/a.png": png_bytes(1), "S/b.png": png_bytes(2)})})
    sources = {"S": archive_source(server.url("t.zip"), filename="t.zip", member_dir="S", images=3)}
    with pytest.raises(dl.VerificationError, match="found 2 images, expected 3"):
        dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("evil", ["../evil.png", "/tmp/srlib-test-evil.png", "S/../../evil.png"])
def test_malicious_zip_member_is_refused(serve, tmp_path, evil):
    data = make_zip({"S/a.png": png_bytes(1), evil: png_bytes(2)})
    server = serve({"evil.zip": data})
    sources = {"S": archive_source(server.url("evil.zip"), filename="evil.zip", member_dir="S", images=1)}
    root = tmp_path / "root"
    with pytest.raises(dl.UnsafeArchiveError, match="refusing to extract"):
        dl.download("S", root, sources=sources, checksums={}, **QUIET)
    assert leftovers(root) == []
    assert not (tmp_path / "evil.png").exists()
    assert not Path("/tmp/srlib-test-evil.png").exists()


def test_symlink_in_tar_is_refused(serve, tmp_path):
    data = make_targz({"S/a.png": png_bytes(1)}, symlinks={"S/b.png": "/etc/passwd"})
    server = serve({"s.tar.gz": data})
    sources = {"S": archive_source(server.url("s.tar.gz"), filename="s.tar.gz", member_dir="S", images=2)}
    with pytest.raises(dl.UnsafeArchiveError, match="symbolic link"):
        dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_corrupted_archive_fails_cleanly(serve, tmp_path, kind):
    members = {f"S/{i}.png": png_bytes(i, (40, 30)) for i in range(4)}
    data = make_zip(members) if kind == "zip" else make_targz(members)
    truncated = data[: len(data) * 2 // 3]
    server = serve({f"s.{kind}": truncated})
    sources = {"S": archive_source(server.url(f"s.{kind}"), filename=f"s.{kind}", member_dir="S", images=4)}
    with pytest.raises(dl.CorruptArchiveError, match="corrupt|damaged|incomplete"):
        dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert leftovers(tmp_path) == []


def test_image_checksum_mismatch_removes_download(serve, tmp_path):
    good, bad = png_bytes(1), png_bytes(2)
    server = serve({"s.zip": make_zip({"S/a.png": bad})})
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=1)}
    checksums = {"S": {"a.png": {"width": 8, "height": 6, "sha256": sha(good), "pixel_sha256": None}}}
    with pytest.raises(dl.VerificationError, match="a.png: sha256"):
        dl.download("S", tmp_path, sources=sources, checksums=checksums, **QUIET)
    assert leftovers(tmp_path) == []


def test_archive_checksum_mismatch_removes_download(serve, tmp_path):
    data = make_zip({"S/a.png": png_bytes(1)})
    server = serve({"s.zip": data})
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S",
                                   images=1, sha256="0" * 64)}
    with pytest.raises(dl.VerificationError, match="sha256 of the downloaded archive"):
        dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert leftovers(tmp_path) == []
    # the md5 field is honoured as well
    sources["S"]["mirrors"][0].update(sha256=None, md5="0" * 32)
    with pytest.raises(dl.VerificationError, match="md5"):
        dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    sources["S"]["mirrors"][0].update(md5=hashlib.md5(data).hexdigest())
    dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert os.listdir(tmp_path / "S") == ["a.png"]


def test_resume_from_partial_file(serve, tmp_path):
    members = {f"S/{i}.png": png_bytes(i, (64, 48)) for i in range(3)}
    data = make_zip(members)
    server = serve({"s.zip": data})
    url = server.url("s.zip")
    sources = {"S": archive_source(url, filename="s.zip", member_dir="S", images=3, sha256=sha(data))}
    downloads = tmp_path / install.DOWNLOADS_DIR
    downloads.mkdir(parents=True)
    half = len(data) // 2
    (downloads / "s.zip.part").write_bytes(data[:half])
    (downloads / "s.zip.part.json").write_text(json.dumps({"url": url, "etag": '"v1"'}))
    dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert server.requests == [("s.zip", f"bytes={half}-", 206)]
    assert sorted(os.listdir(tmp_path / "S")) == ["0.png", "1.png", "2.png"]
    assert leftovers(tmp_path) == ["S", "S/0.png", "S/1.png", "S/2.png"]


def noise_png(seed: int, size=(200, 150)) -> bytes:
    """An incompressible PNG, so that an archive of a few of them spans several download chunks."""
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_interrupted_download_is_resumed_on_the_next_run(serve, tmp_path):
    members = {f"S/{i}.png": noise_png(i) for i in range(3)}
    data = make_zip(members)
    cut = 2 * fetch.CHUNK_SIZE  # urllib3 drops a chunk it could not fill, so the break falls on a chunk boundary
    assert len(data) > cut + fetch.CHUNK_SIZE
    server = serve({"s.zip": data})
    server.cut_after["s.zip"] = cut  # the first transfer breaks off after `cut` bytes
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S",
                                   images=3, sha256=sha(data))}
    with pytest.raises(dl.NetworkError, match="interrupted|stopped"):
        dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    part = tmp_path / install.DOWNLOADS_DIR / "s.zip.part"
    assert part.stat().st_size == cut
    assert part.read_bytes() == data[:cut]
    assert not (tmp_path / "S").exists()
    dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert server.requests[-1] == ("s.zip", f"bytes={cut}-", 206)
    assert sorted(os.listdir(tmp_path / "S")) == ["0.png", "1.png", "2.png"]
    assert not part.exists()


def test_server_without_range_support_restarts_cleanly(serve, tmp_path):
    data = make_zip({"S/a.png": png_bytes(1), "S/b.png": png_bytes(2)})
    server = serve({"s.zip": data}, ranges=False)
    url = server.url("s.zip")
    sources = {"S": archive_source(url, filename="s.zip", member_dir="S", images=2)}
    downloads = tmp_path / install.DOWNLOADS_DIR
    downloads.mkdir(parents=True)
    (downloads / "s.zip.part").write_bytes(b"garbage that must not be kept")
    dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert server.requests[0][2] == 200  # the whole file came again
    assert sorted(os.listdir(tmp_path / "S")) == ["a.png", "b.png"]


def test_complete_part_file_from_an_earlier_run_restarts_cleanly(serve, tmp_path):
    data = make_zip({"S/a.png": png_bytes(1)})
    server = serve({"s.zip": data})
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=1)}
    downloads = tmp_path / install.DOWNLOADS_DIR
    downloads.mkdir(parents=True)
    (downloads / "s.zip.part").write_bytes(data)  # interrupted between the last byte and the rename
    dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert server.requests == [("s.zip", f"bytes={len(data)}-", 416), ("s.zip", None, 200)]
    assert leftovers(tmp_path) == ["S", "S/a.png"]


def test_file_by_file_source_with_a_wrong_checksum_is_refused(serve, tmp_path):
    good, bad = png_bytes(1), png_bytes(2)
    server = serve({"set/a.png": bad})
    checksums = {"T": {"a.png": {"width": 8, "height": 6, "sha256": sha(good), "pixel_sha256": None}}}
    sources = {"T": {"images": 1, "mirrors": [{"type": "files", "base_url": server.url("set/")}]}}
    with pytest.raises(dl.VerificationError, match="a.png: sha256"):
        dl.download("T", tmp_path, sources=sources, checksums=checksums, **QUIET)
    assert leftovers(tmp_path) == []


def test_no_network_gives_hand_download_instructions(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/toy.zip"
    sources = {"Toy": archive_source(url, filename="toy.zip", member_dir="Toy", images=1)}
    root = tmp_path / "data"
    start = time.monotonic()
    with pytest.raises(dl.NetworkError) as err:
        dl.download("Toy", root, sources=sources, checksums={}, **QUIET)
    assert time.monotonic() - start < 1.0  # no waiting for a timeout
    msg = str(err.value)
    assert url in msg
    assert "connection refused" in msg
    assert str((root / "Toy").resolve()) + os.sep in msg
    assert "--from-archive" in msg
    assert leftovers(root) == []


@pytest.mark.parametrize("command", [SCRIPT, MODULE], ids=["script", "module"])
def test_cli_without_network_exits_nonzero_without_traceback(tmp_path, command):
    url = f"http://127.0.0.1:{closed_port()}/toy.zip"
    table = tmp_path / "sources.json"
    table.write_text(json.dumps(
        {"Toy": archive_source(url, filename="toy.zip", member_dir="Toy", images=1)}))
    root = tmp_path / "data"
    (tmp_path / "none.tsv").write_text("dataset\tfile\twidth\theight\tsha256\tpixel_sha256\n")  # no rows
    proc = subprocess.run(
        command + ["Toy", "--root", str(root), "--sources", str(table),
                   "--checksums", str(tmp_path / "none.tsv"), "--timeout", "5"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert url in proc.stderr
    assert str((root / "Toy").resolve()) in proc.stderr


def test_html_page_instead_of_file_is_an_error(serve, tmp_path):
    server = serve({"s.zip": b"<html><body>Please confirm</body></html>"}, content_type="text/html")
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=1)}
    with pytest.raises(dl.DownloadError, match="web page"):
        dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert leftovers(tmp_path) == []


def test_next_mirror_is_tried(serve, tmp_path):
    server = serve({"s.zip": make_zip({"S/a.png": png_bytes(1)})})
    dead = f"http://127.0.0.1:{closed_port()}/s.zip"
    spec = archive_source(dead, filename="s.zip", member_dir="S", images=1)
    spec["mirrors"].append(dict(spec["mirrors"][0], url=server.url("s.zip")))
    path = dl.download("S", tmp_path, sources={"S": spec}, checksums={}, **QUIET)
    assert os.listdir(path) == ["a.png"]


def test_archive_shared_by_two_sets_is_downloaded_once(serve, tmp_path):
    data = make_zip({"bench/A/HR/a.png": png_bytes(1), "bench/B/HR/b1.png": png_bytes(2),
                     "bench/B/HR/b2.png": png_bytes(3)})
    server = serve({"bench.zip": data})
    sources = {
        "A": archive_source(server.url("bench.zip"), filename="bench.zip", member_dir="A/HR", images=1),
        "B": archive_source(server.url("bench.zip"), filename="bench.zip", member_dir="B/HR", images=2),
    }
    results = dl.download(["A", "B"], tmp_path, sources=sources, checksums={}, **QUIET)
    assert results == {"A": tmp_path / "A", "B": tmp_path / "B"}
    assert len(server.requests) == 1
    assert leftovers(tmp_path) == ["A", "A/a.png", "B", "B/b1.png", "B/b2.png"]


def test_file_by_file_source_with_bmp_to_png_conversion(serve, tmp_path):
    bmps = {f"t{i}.bmp": png_bytes(i, fmt="BMP") for i in range(1, 4)}
    server = serve({f"yang91/{k}": v for k, v in bmps.items()})
    checksums = {"T": {}}
    for k, v in bmps.items():
        im = Image.open(io.BytesIO(v))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        checksums["T"][k.replace(".bmp", ".png")] = {
            "width": 8, "height": 6, "sha256": sha(buf.getvalue()),
            "pixel_sha256": hashlib.sha256(im.convert("RGB").tobytes()).hexdigest()}
    sources = {"T": {"images": 3, "store_as": "png", "mirrors": [
        {"type": "files", "base_url": server.url("yang91/"), "source_ext": ".bmp",
         "archive_dir": "yang91"}]}}
    path = dl.download("T", tmp_path, sources=sources, checksums=checksums, **QUIET)
    assert sorted(os.listdir(path)) == ["t1.png", "t2.png", "t3.png"]
    assert dl.pixel_sha256(path / "t1.png") == checksums["T"]["t1.png"]["pixel_sha256"]
    assert leftovers(tmp_path) == ["T", "T/t1.png", "T/t2.png", "T/t3.png"]

    # a pixel that differs is caught
    sources2 = {"T2": sources["T"]}
    checksums2 = {"T2": dict(checksums["T"])}
    checksums2["T2"]["t2.png"] = dict(checksums["T"]["t2.png"], sha256="1" * 64, pixel_sha256="2" * 64)
    with pytest.raises(dl.VerificationError, match="t2.png"):
        dl.download("T2", tmp_path, sources=sources2, checksums=checksums2, **QUIET)
    assert not (tmp_path / "T2").exists()


def test_from_archive_installs_and_keeps_the_archive(tmp_path):
    hr = {"x.png": png_bytes(1), "y.png": png_bytes(2)}
    archive = tmp_path / "by_hand.zip"
    archive.write_bytes(make_zip({f"whatever/{k}": v for k, v in hr.items()}))
    sources = {"S": archive_source("http://127.0.0.1:9/none.zip", filename="none.zip",
                                   member_dir="Elsewhere", images=2)}
    checksums = {"S": {k: {"width": 8, "height": 6, "sha256": sha(v), "pixel_sha256": None}
                       for k, v in hr.items()}}
    root = tmp_path / "data"
    rc = dl.main(["S", "--from-archive", str(archive), "--root", str(root),
                  "--sources", _write_json(tmp_path / "src.json", sources),
                  "--checksums", _write_tsv(tmp_path / "sums.tsv", checksums)])
    assert rc == 0
    assert sorted(os.listdir(root / "S")) == ["x.png", "y.png"]
    assert archive.exists()


def test_existing_incomplete_folder_needs_force(serve, tmp_path):
    server = serve({"s.zip": make_zip({"S/a.png": png_bytes(1), "S/b.png": png_bytes(2)})})
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=2)}
    (tmp_path / "S").mkdir()
    (tmp_path / "S" / "a.png").write_bytes(png_bytes(1))
    with pytest.raises(dl.DownloadError, match="--force"):
        dl.download("S", tmp_path, sources=sources, checksums={}, **QUIET)
    assert os.listdir(tmp_path / "S") == ["a.png"]
    dl.download("S", tmp_path, sources=sources, checksums={}, force=True, **QUIET)
    assert sorted(os.listdir(tmp_path / "S")) == ["a.png", "b.png"]
    assert leftovers(tmp_path) == ["S", "S/a.png", "S/b.png"]


def test_default_root_comes_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path / "env-root"))
    assert data.data_root() == tmp_path / "env-root"
    assert data.data_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("SRLIB_DATA")
    assert data.data_root() == Path("data")


@pytest.mark.parametrize("env", [None, "", "some/where"], ids=["unset", "empty", "set"])
def test_data_root_is_one_definition(monkeypatch, env, capsys):
    if env is None:
        monkeypatch.delenv("SRLIB_DATA", raising=False)
    else:
        monkeypatch.setenv("SRLIB_DATA", env)
    assert not hasattr(dl, "data_root") and data.data_root is files.data_root  # one function, in srlib.files
    assert data.data_root() == Path(env or "data")
    assert data.data_root("") == Path(env or "data")  # an empty --root counts as not given
    assert data.data_root("mine") == Path("mine")
    assert dl.main(["--list", "--root", ""]) == 0
    assert f"data root: {data.data_root().resolve()}  (" in capsys.readouterr().out


def test_load_set_reads_what_download_installs(serve, tmp_path, monkeypatch):
    server = serve({"s.zip": make_zip({"S/a.png": png_bytes(1), "S/b.png": png_bytes(2)})})
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=2)}
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))
    dl.download("S", sources=sources, checksums={}, **QUIET)
    images = data.load_set("S")
    assert sorted(images) == ["a", "b"] and images["a"].shape == (6, 8, 3)
    assert dl.verify("S", sources=sources, checksums={}) == tmp_path / "S"


@pytest.mark.parametrize("field,value", [
    ("filename", "../evil.zip"), ("filename", "/tmp/srlib-test-evil.zip"),
    ("rename", {"a.png": "../../evil.png"}), ("rename", {"a.png": "/tmp/srlib-test-evil.png"}),
])
def test_unsafe_names_in_the_table_are_refused_before_anything_is_written(serve, tmp_path, field, value):
    server = serve({"s.zip": make_zip({"S/a.png": png_bytes(1)})})
    sources = {"S": archive_source(server.url("s.zip"), filename="s.zip", member_dir="S", images=1)}
    sources["S"]["mirrors"][0][field] = value
    root = tmp_path / "root"
    with pytest.raises(dl.UnsafeSourceError, match="refusing"):
        dl.download("S", root, sources=sources, checksums={}, **QUIET)
    archive = tmp_path / "hand.zip"
    archive.write_bytes(make_zip({"S/a.png": png_bytes(1)}))
    with pytest.raises(dl.UnsafeSourceError, match="refusing"):
        dl.install_from_archive("S", archive, root, sources=sources, checksums={}, log=None)
    assert not root.exists() and server.requests == []
    assert not (tmp_path / "evil.zip").exists() and not Path("/tmp/srlib-test-evil.zip").exists()


def test_unsafe_installed_file_names_are_refused(tmp_path):
    sources = {"S": archive_source("http://127.0.0.1:9/s.zip", filename="s.zip", member_dir="S", images=1)}
    checksums = {"S": {"../a.png": {"width": 8, "height": 6, "sha256": "0" * 64, "pixel_sha256": None}}}
    with pytest.raises(dl.UnsafeSourceError, match="'../a.png'"):
        dl.download("S", tmp_path / "root", sources=sources, checksums=checksums, **QUIET)
    assert not (tmp_path / "root").exists()


def _write_json(path: Path, obj) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


def _write_tsv(path: Path, checksums) -> str:
    lines = ["dataset\tfile\twidth\theight\tsha256\tpixel_sha256"]
    for ds, rows in checksums.items():
        for f, facts in rows.items():
            lines.append(f"{ds}\t{f}\t{facts['width']}\t{facts['height']}\t{facts['sha256']}\t"
                         f"{facts.get('pixel_sha256') or ''}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)
