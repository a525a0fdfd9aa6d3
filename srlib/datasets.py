"""The standard super-resolution data sets: their sources, download, checks and install.

    python -m srlib download --list
    python -m srlib download Set5 T91 --root ./data
    python -m srlib download Urban100 --from-archive ~/Downloads/Urban100_HR.tar.gz

Every set is installed flat as ``<root>/<Name>/<image files>``, which is what
:func:`srlib.data.load_set` reads; ``<root>`` is :func:`data_root`. The table of sets
(``data_sources/sources.json``: mirrors tried in order, archive layouts, renames, archive
checksums) and the per-image checksums (``data_sources/checksums.tsv``) ship with the package.
Files are fetched with pooch (an interrupted archive download resumes, see
:class:`_ResumingDownloader`); every archive member is checked before anything is written;
images are extracted flat into a temporary folder inside ``<root>``, verified, and only then
renamed to ``<root>/<Name>``. Whatever fails is removed (a bad archive included), so a set is
either complete or absent. Sizes are capped: a download stops once it is larger than expected
(:func:`_download_limit`, :func:`_image_limit`), and extraction stops at a per-image and a
total limit, so a wrong link or a zip bomb cannot fill the disk. A server that stops sending, or
sends so slowly that less than :data:`STALL_BYTES` arrive in a whole ``timeout``, is given up
(the part received is kept, and the same command resumes it).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import errno
import fnmatch
import functools
import hashlib
import importlib.util
import json
import math
import os
import posixpath
import re
import shutil
import signal
import stat
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterable, Mapping

__all__ = ["DownloadError", "NetworkError", "VerificationError", "UnsafeArchiveError", "UnsafeSourceError",
           "CorruptArchiveError", "SETS", "data_root", "load_sources", "load_checksums", "expected_files",
           "download", "install_from_archive", "verify", "verify_folder", "pixel_sha256", "format_table",
           "add_arguments", "run", "main"]

TABLES = Path(__file__).with_name("data_sources")
IMAGE_EXTS = (".png", ".bmp", ".jpg", ".jpeg")
DOWNLOADS_DIR = ".downloads"
CHUNK_SIZE = 1 << 16
DEFAULT_TIMEOUT = 60.0
STALL_BYTES = 16 << 10  # fewer bytes than this in a whole timeout: the transfer has stalled
MB = 1 << 20
MAX_IMAGE_BYTES = 200 * MB  # one image file whose size is not known (DIV2K's largest PNG is about 6 MB)
MAX_EXTRACTED_BYTES = 8 << 30  # everything extracted for one set (DIV2K's 800 training images: 3.5 GB)
MAX_DOWNLOAD_BYTES = 8 << 30  # an archive whose size the table does not give


class DownloadError(Exception):
    """A data set could not be installed. The message is meant for the user."""


class NetworkError(DownloadError):
    """The server could not be reached, or the transfer was interrupted."""


class VerificationError(DownloadError):
    """Downloaded data does not match what was expected (checksum, count, names)."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target folder, is not a plain file, or is too large."""


class UnsafeSourceError(DownloadError):
    """The data set table gives a path where a plain file name is needed."""


class CorruptArchiveError(DownloadError):
    """An archive cannot be read: truncated, damaged or of an unknown format."""


# --------------------------------------------------------------------------- the tables


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding the data sets: ``root``, else ``$SRLIB_DATA``, else ``./data``.

    An empty string counts as not given, for the argument and the variable alike.
    """
    if root is None or str(root) == "":
        root = os.environ.get("SRLIB_DATA") or "data"
    return Path(root).expanduser()


def load_sources(table=None) -> dict:
    """The data set table: the shipped ``sources.json``, or a dict / JSON path in its format."""
    if table is None or isinstance(table, (str, os.PathLike)):
        with open(table or TABLES / "sources.json", encoding="utf-8") as fh:
            table = json.load(fh)
    return {k: v for k, v in dict(table).items() if not str(k).startswith("_")}  # "_..." keys are comments


def load_checksums(table=None) -> dict[str, dict[str, dict]]:
    """``{set: {file: {width, height, sha256, pixel_sha256}}}``: the shipped TSV, another one, or a dict."""
    if table is not None and not isinstance(table, (str, os.PathLike)):
        return dict(table)
    out: dict[str, dict[str, dict]] = {}
    path = Path(table or TABLES / "checksums.tsv")
    if table is not None and not path.is_file():  # a table asked for and absent would check nothing
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    if path.exists():
        with open(path, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                facts = {k: int(row[k]) if row.get(k) else None for k in ("width", "height")}
                facts.update({k: (row.get(k) or "").lower() or None for k in ("sha256", "pixel_sha256")})
                out.setdefault(row["dataset"], {})[row["file"]] = facts
    return out


SETS = {name: spec.get("description", "") for name, spec in load_sources().items()}


def expected_files(name: str, spec: Mapping, checksums: Mapping) -> dict[str, dict] | None:
    """Installed file name -> known facts (may be empty), or None when the names are not known."""
    if checksums.get(name):
        return dict(checksums[name])
    names = spec.get("names")
    if names:
        return {names["format"].format(i): {} for i in range(int(names["first"]), int(names["last"]) + 1)}
    return None


def _resolve(names: Iterable[str], sources: Mapping) -> list[str]:
    """Canonical set names (any case; ``all`` is every set), without repeats."""
    folded = {k.lower(): k for k in sources}
    out: list[str] = []
    for n in names:
        if n.lower() not in folded and n.lower() != "all":
            raise DownloadError(f"unknown data set {n!r}; known sets: {', '.join(sources)} (or 'all')")
        out += [k for k in (sources if n.lower() == "all" else [folded[n.lower()]]) if k not in out]
    return out


def _is_plain_name(fname: str) -> bool:
    return (isinstance(fname, str) and bool(fname) and fname not in (".", "..") and len(fname.encode()) <= 255
            and not any(c in fname for c in "/\\:\0"))


def _is_visible_plain_name(fname: str) -> bool:
    """A plain name not starting with ".": the installer's own working files (``.downloads``,
    ``.<set>.tmp-*``, ``.raw``) start with one, and load_set skips such hidden files."""
    return _is_plain_name(fname) and not fname.startswith(".")


def _check_names(name: str, spec: Mapping, checksums: Mapping) -> None:
    """Refuse a table entry whose set or file names are paths (``../x``, ``/x``): they would write elsewhere."""
    visible = [("set name", name)] + [("file name", f) for f in expected_files(name, spec, checksums) or ()]
    plain = []
    for mirror in spec.get("mirrors") or []:
        plain += [("archive file name", _archive_name(mirror))] if mirror.get("type") == "archive" else []
        rename = mirror.get("rename") or {}
        if not isinstance(rename, Mapping):
            raise UnsafeSourceError(f"refusing to install {name}: 'rename' must map archive names to file names, "
                                    f"got {rename!r}")
        visible += [("rename target", f) for f in rename.values()]
        plain += [("source extension", "x" + str(mirror["source_ext"]))] if mirror.get("source_ext") else []
    bad = [f"{what} {value!r}" for what, value in visible if not _is_visible_plain_name(value)]
    bad += [f"{what} {value!r}" for what, value in plain if not _is_plain_name(value)]
    if bad:
        raise UnsafeSourceError(f"refusing to install {name}: the data set table gives a path where a plain "
                                f"file name is needed: {_short_list(bad)}")


def _archive_name(mirror: Mapping) -> str:
    return mirror.get("filename") or posixpath.basename(urllib.parse.urlparse(mirror["url"]).path) or "download"


def _known_hash(mirror: Mapping) -> str | None:
    """The archive checksum as pooch wants it (``alg:hex``), or None when none is published."""
    return next((f"{alg}:{mirror[alg].lower()}" for alg in ("sha256", "md5") if mirror.get(alg)), None)


def _image_limit(facts: Mapping | None) -> int:
    """The most bytes an image file may take: with its size known, 8 bytes a pixel (16-bit RGBA,
    uncompressed) plus 1 MB of metadata; else :data:`MAX_IMAGE_BYTES`."""
    if facts and facts.get("width") and facts.get("height"):
        return 8 * int(facts["width"]) * int(facts["height"]) + MB
    return MAX_IMAGE_BYTES


def _download_limit(spec: Mapping, mirror: Mapping) -> int:
    """The most bytes an archive download may take: the mirror's ``max_bytes``, else four times the
    set's approximate ``size`` plus 100 MB (sizes are rounded, archives differ), else :data:`MAX_DOWNLOAD_BYTES`."""
    if mirror.get("max_bytes"):
        return int(mirror["max_bytes"])
    approximate = re.search(r"([\d.]+)\s*([KMG])B", str(spec.get("size", "")))
    if approximate:
        unit = {"K": 1 << 10, "M": MB, "G": 1 << 30}[approximate[2]]
        return int(4 * float(approximate[1]) * unit) + 100 * MB
    return MAX_DOWNLOAD_BYTES


def _short_list(items: Iterable[str], limit: int = 5) -> str:
    items = list(items)
    return ", ".join(items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit else "")


# --------------------------------------------------------------------------- fetching, with pooch


def _retrieve(url: str, folder: Path, fname: str, *, known_hash: str | None = None, what: str = "file",
              progress: bool = True, timeout: float = DEFAULT_TIMEOUT, max_bytes: int | None = None) -> Path:
    """``folder/fname``, downloaded by pooch unless it is there already (and matches ``known_hash``).

    A download larger than ``max_bytes`` is stopped (as soon as the server announces its size,
    else once that many bytes have come) and removed."""
    import pooch

    logger, level = pooch.get_logger(), pooch.get_logger().level
    logger.setLevel("WARNING")  # pooch logs every download at INFO level; callers say what happens
    try:
        downloader = _ResumingDownloader(folder / (fname + ".part"), progress, timeout, max_bytes, what)
        return Path(pooch.retrieve(url, known_hash, fname=fname, path=folder, downloader=downloader))
    except ValueError as exc:  # pooch: the checksum does not match (it has deleted the file)
        if "hash" not in str(exc).lower():  # another mistake (requests says ValueError too): not a checksum
            raise DownloadError(f"{fname.removeprefix('.raw-')}: {' '.join(str(exc).split())}") from None
        alg = str(known_hash).split(":")[0]
        raise VerificationError(f"{fname.removeprefix('.raw-')}: {alg} of the downloaded {what} does not match the "
                                f"published checksum; the download was removed ({exc})") from None
    finally:
        logger.setLevel(level)


class _ResumingDownloader:
    """A pooch downloader that survives interrupted transfers.

    pooch streams into a temporary file that it deletes when the transfer fails. This
    downloader collects the bytes in ``<file>.part`` instead, which stays after an
    interruption, and the next run asks only for the rest: an HTTP ``Range`` request, guarded
    by ``If-Range`` with the ETag seen before (kept in ``<file>.part.json``). A server that
    answers with the whole file restarts it from zero. Once complete, the ``.part`` file
    becomes pooch's temporary file, which pooch checks against the known hash and renames.
    The transfer itself is ``pooch.HTTPDownloader`` (requests, tqdm progress bar).
    """

    def __init__(self, part: Path, progress: bool, timeout: float, max_bytes: int | None = None, what: str = "file"):
        self.part, self.meta, self.timeout = part, part.with_name(part.name + ".json"), timeout
        self.progress = progress and importlib.util.find_spec("tqdm") is not None
        self.max_bytes, self.what = max_bytes, what

    def __call__(self, url, output_file, pooch_instance=None, check_only=False):
        import pooch
        import requests

        offset = self.part.stat().st_size if self.part.exists() else 0
        headers = {"User-Agent": "srlib-datasets", "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            try:
                etag = json.loads(self.meta.read_text()).get("etag") or ""
            except (OSError, ValueError, AttributeError):
                etag = ""
            if etag and not etag.startswith("W/"):  # weak validators are not allowed in If-Range
                headers["If-Range"] = etag
        self.size = self.started = self.stalled = None
        self.received = offset
        try:
            with open(self.part, "ab") as out, _answer_deadline(self):
                hooks = {"response": lambda response, **_: self._start(response, out, offset, url)}
                pooch.HTTPDownloader(progressbar=self.progress, chunk_size=CHUNK_SIZE, headers=headers,
                                     timeout=self.timeout, hooks=hooks)(url, _Capped(out, self, url), pooch_instance)
        except DownloadError:  # from _start: a web page, or another range than asked for
            self._discard()
            raise
        except requests.HTTPError as exc:
            if exc.response.status_code == 416 and offset:  # asked for a range past the end: start again
                self._discard()
                return self(url, output_file, pooch_instance)
            raise DownloadError(f"{url}: HTTP error {exc.response.status_code} ({exc.response.reason})") from None
        except (requests.RequestException, TimeoutError) as exc:  # TimeoutError: the deadline, between two reads
            if self.stalled:
                kept = self.part.stat().st_size if self.part.exists() else 0
                again = (f"the {kept:,} bytes received are kept: run the same command again to resume" if kept
                         else "run the same command again later, or give a longer --timeout")
                raise NetworkError(f"download of {url} stalled: {self.stalled}; {again}") from None
            if self.started:
                raise NetworkError(f"download of {url} was interrupted after {self.part.stat().st_size} bytes "
                                   f"({_network_reason(exc)}); run the same command again to resume") from None
            raise NetworkError(f"cannot reach {url}: {_network_reason(exc)}") from None
        finally:
            if self.part.exists() and not self.part.stat().st_size:
                self._discard()  # nothing arrived: leave nothing behind
        if self.size is not None and self.part.stat().st_size < self.size:
            raise NetworkError(f"download of {url} stopped after {self.part.stat().st_size} of {self.size} bytes; "
                               "run the same command again to resume")
        os.replace(self.part, output_file)
        self.meta.unlink(missing_ok=True)

    def _start(self, response, out, offset: int, url: str) -> None:
        """Called by requests when the headers are in, before the body is read."""
        if response.is_redirect or response.status_code >= 400:
            return  # requests follows redirects; pooch raises HTTP errors
        if response.headers.get("Content-Type", "").split(";")[0].strip() in ("text/html", "application/xhtml+xml"):
            response.close()
            raise DownloadError(f"{url} returned a web page instead of the file (the link may need a browser, "
                                "e.g. a confirmation page, or it may have moved)")
        match = re.match(r"\s*bytes\s+(\d+)-", response.headers.get("Content-Range", ""))
        start = int(match.group(1)) if response.status_code == 206 and match else 0
        if response.status_code == 206 and start != offset:
            raise DownloadError(f"{url}: the server sent another part of the file than the one asked for")
        if start == 0:
            out.truncate(0)  # a fresh download, or the server ignored the Range request
        length = response.headers.get("Content-Length", "")
        self.size = start + int(length) if length.isdigit() else None
        self.received = start
        if self.size is not None and self.max_bytes is not None and self.size > self.max_bytes:
            response.close()
            raise self.too_large(url, announced=self.size)
        self.started = True  # from here on, _StallGuard watches the body
        _watch_for_stalls(response, self)
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        self.meta.write_text(json.dumps({"url": url, "etag": validator}))

    def _discard(self) -> None:
        self.part.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)

    def too_large(self, url: str, announced: int | None = None) -> DownloadError:
        size = f"is {announced:,} bytes," if announced is not None else "sent"
        return DownloadError(f"{url} {size} more than the {self.max_bytes:,} bytes expected for this {self.what}; "
                             "stopped and removed it (the link may now point to another file)")


@contextlib.contextmanager
def _answer_deadline(downloader: _ResumingDownloader):
    """Give up when the server's answer (status line and headers) is not complete after ``timeout``.

    Like the body, the headers can trickle in a byte at a time, each byte arriving before the
    socket's timeout. An interval timer interrupts the wait for them; once the body has started,
    it does nothing. Signals work in the main thread only, and the timer is left alone when
    someone else has set it: there the socket timeout is the only limit."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield
        return

    def expire(signum, frame):
        if not downloader.started:
            downloader.stalled = f"the server's answer was not complete after {downloader.timeout:g} s"
            raise TimeoutError(downloader.stalled)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, downloader.timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _watch_for_stalls(response, downloader: _ResumingDownloader) -> None:
    """Let ``downloader`` see the body arrive piece by piece, so that a trickling server is caught.

    The socket's timeout bounds each wait for data, but a server that sends a byte every few
    seconds never triggers it, and the reads above it wait for a whole chunk (64 KB: a day and
    a half at that pace). The reader of the response is wrapped so that every piece the socket
    delivers is counted as it arrives. Where the response has no such reader (another HTTP
    library), nothing is wrapped: the socket timeout still applies."""
    connection = getattr(getattr(response, "raw", None), "_fp", None)  # urllib3 -> http.client response
    reader = getattr(connection, "fp", None)
    if reader is not None and hasattr(reader, "read1"):
        connection.fp = _StallGuard(reader, downloader)


class _StallGuard:
    """A buffered socket reader that reads no more than the socket has delivered, and gives up
    (``TimeoutError``, which requests reports as a timeout) when a whole ``timeout`` brings fewer
    than :data:`STALL_BYTES`."""

    def __init__(self, reader, downloader: _ResumingDownloader):
        self.reader, self.downloader = reader, downloader
        self.window_start, self.window_bytes = time.monotonic(), 0

    def _arrived(self, n: int) -> None:
        now, d = time.monotonic(), self.downloader
        self.window_bytes += n
        if now - self.window_start >= d.timeout:
            if self.window_bytes < STALL_BYTES:
                d.stalled = (f"{self.window_bytes:,} bytes arrived in {now - self.window_start:.0f} s, less than "
                             f"{STALL_BYTES:,} bytes per timeout of {d.timeout:g} s")
                raise TimeoutError(d.stalled)
            self.window_start, self.window_bytes = now, 0

    def readinto(self, buffer) -> int:
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < len(view):
            piece = self.reader.read1(len(view) - filled)
            if not piece:
                break
            view[filled:filled + len(piece)] = piece
            filled += len(piece)
            self._arrived(len(piece))
        return filled

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:  # to the end
            pieces = []
            while piece := self.read(CHUNK_SIZE):
                pieces.append(piece)
            return b"".join(pieces)
        buffer = bytearray(n)
        return bytes(buffer[:self.readinto(buffer)])

    def readline(self, limit: int = -1) -> bytes:
        line = self.reader.readline(limit)
        self._arrived(len(line))
        return line

    def __getattr__(self, name: str):
        return getattr(self.reader, name)


class _Capped:
    """The ``.part`` file as pooch writes it: counts the bytes, and stops a download past its limit."""

    def __init__(self, file, downloader: _ResumingDownloader, url: str):
        self.file, self.downloader, self.url = file, downloader, url

    def write(self, chunk: bytes) -> None:
        d = self.downloader
        d.received += len(chunk)
        if d.max_bytes is not None and d.received > d.max_bytes:  # the server sent no size, or a wrong one
            raise d.too_large(self.url)
        self.file.write(chunk)

    def flush(self) -> None:
        self.file.flush()


def _network_reason(exc: BaseException) -> str:
    """Why a connection failed, in words (requests quotes the underlying errors in its message)."""
    text = f"{type(exc).__name__}: {exc}"
    for markers, reason in [(("NameResolution", "getaddrinfo", "Name or service not known"),
                             "the host name could not be resolved (no network connection or DNS failure)"),
                            (("Connection refused",), "connection refused"),
                            (("Timeout", "timed out"), "the connection timed out"), (("SSL",), "a TLS/SSL error"),
                            (("Connection broken", "reset by peer"), "the connection broke off")]:
        if any(m in text for m in markers):
            return reason
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------- archives

_READ_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError)


@contextlib.contextmanager
def _open_archive(path: Path):
    """The members of a zip or tar (plain, gzip, bzip2, xz) archive as (name, kind, open member) triples."""
    archive = None
    try:
        archive = zipfile.ZipFile(path) if zipfile.is_zipfile(path) else tarfile.open(path, "r:*")
        if isinstance(archive, zipfile.ZipFile):
            members = [(i.filename, _kind(i), functools.partial(archive.open, i)) for i in archive.infolist()]
        else:  # getmembers() reads the whole tar, so a truncated one is found here
            members = [(i.name, _kind(i), functools.partial(archive.extractfile, i)) for i in archive.getmembers()]
    except _READ_ERRORS as exc:
        if archive is not None:
            archive.close()
        raise CorruptArchiveError(f"{path.name} is not a readable zip or tar archive ({exc}); "
                                  "the file is corrupt or incomplete") from None
    with archive:
        yield members


def _kind(info) -> str:
    """file, dir, symlink, hardlink or special, for a zip or tar member."""
    if isinstance(info, tarfile.TarInfo):
        return ("symlink" if info.issym() else "hardlink" if info.islnk() else "dir" if info.isdir()
                else "file" if info.isfile() else "special")
    mode = stat.S_IFMT(info.external_attr >> 16)  # the Unix file type bits, when present
    return ("symlink" if mode == stat.S_IFLNK else "dir" if info.is_dir() or mode == stat.S_IFDIR
            else "file" if mode in (0, stat.S_IFREG) else "special")


def _unsafe_reason(name: str, kind: str) -> str | None:
    """Why a member must not be extracted, or None: links, special files, absolute paths, ``..``."""
    kinds = {"symlink": "it is a symbolic link", "hardlink": "it is a hard link",
             "special": "it is a device, FIFO or other special file"}
    norm = name.replace("\\", "/")
    if kind in kinds:
        return kinds[kind]
    if "\0" in name:
        return "its name contains a NUL byte"
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "it has an absolute path"
    return "its path contains '..'" if ".." in norm.split("/") else None


def _final_name(base: str, rename: Mapping[str, str], spec: Mapping) -> str:
    name = rename.get(base, base)
    if spec.get("store_as") == "png" and not name.lower().endswith(".png"):
        name = posixpath.splitext(name)[0] + ".png"
    return name


def _in_folder(parent: str, folder: str | None) -> bool:
    """Whether a member's folder is ``folder``, matched against the end of its path (None: any folder)."""
    folder = None if folder is None else folder.strip("/")
    if folder in ("", "."):
        return parent == ""
    return folder is None or parent == folder or parent.endswith("/" + folder)


def _select(name: str, path: Path, members: list, spec: Mapping, rules: list[Mapping], expected: Mapping | None):
    """The (member name, opener) pairs holding the HR images of ``name``, and the renames to apply."""
    images = [(n, info) for n, kind, info in members if kind == "file" and n.lower().endswith(IMAGE_EXTS)
              and "__MACOSX" not in n.split("/") and not posixpath.basename(n).startswith(".")]
    for rule in rules:  # the layouts of the known sources
        pattern = (rule.get("pattern") or "*").lower()
        chosen = [(n, info) for n, info in images if _in_folder(posixpath.dirname(n), rule.get("member_dir"))
                  and fnmatch.fnmatchcase(posixpath.basename(n).lower(), pattern)]
        if chosen:
            return chosen, dict(rule.get("rename") or {})
    # An archive made by hand: the one folder holding the expected files (or number of images).
    by_dir: dict[str, list] = {}
    for n, info in images:
        if expected is None or _final_name(posixpath.basename(n), {}, spec) in expected:
            by_dir.setdefault(posixpath.dirname(n), []).append((n, info))
    wanted = len(expected) if expected else spec.get("images")
    found = [group for group in by_dir.values() if len(group) == wanted]
    if len(found) == 1:
        return found[0], {}
    folders = sorted(f"{d or '.'}/ ({len(g)} images)" for d, g in by_dir.items()) or ["none"]
    raise DownloadError(f"could not find the {name} images in {path.name}; folders with images of "
                        f"the set: {_short_list(folders)}")


def _store(src: Path, dest: Path, spec: Mapping) -> bool:
    """Move ``src`` to ``dest``, converting it to PNG where the set asks for it. True if re-encoded."""
    with open(src, "rb") as fh:
        is_png = fh.read(8) == b"\x89PNG\r\n\x1a\n"
    if spec.get("store_as") != "png" or is_png:
        os.replace(src, dest)
        return False
    from PIL import Image

    try:
        with Image.open(src) as im:
            im.load()
            keep = im.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16")
            (im if keep else im.convert("RGB")).save(dest, format="PNG")
    except Exception as exc:  # Pillow raises many exception types
        raise VerificationError(f"{dest.stem} cannot be read as an image ({exc})") from None
    src.unlink()
    return True


def _extract_images(name: str, path: Path, dest: Path, spec: Mapping, rules: list[Mapping],
                    expected: Mapping | None) -> set[str]:
    """Write the HR images of ``name`` flat into ``dest``; return the names of re-encoded files.

    Every member is checked first, and one unsafe member refuses the whole archive. Files are
    written only under plain names chosen here, never under a path taken from the archive.
    """
    with _open_archive(path) as members:
        bad = [f"{n!r} ({why})" for n, kind, _ in members if (why := _unsafe_reason(n, kind))]
        if bad:
            raise UnsafeArchiveError(f"refusing to extract {path.name}: member(s) would escape the target "
                                     f"folder or are not plain files: {_short_list(bad)}")
        chosen, rename = _select(name, path, members, spec, rules, expected)
        finals: dict[str, tuple] = {}  # installed name -> (member name, opener)
        for member, opener in chosen:
            final = _final_name(posixpath.basename(member), rename, spec)
            if not _is_plain_name(final) or final in finals:
                raise UnsafeArchiveError(f"refusing to extract {path.name}: {member!r} would be installed as "
                                         f"{final!r}, " + ("twice" if final in finals else "not a plain file name"))
            finals[final] = (member, opener)
        reencoded, extracted = set(), 0
        for final, (member, opener) in finals.items():
            raw = dest / ".raw"
            image_limit = _image_limit((expected or {}).get(final))
            limit = min(image_limit, MAX_EXTRACTED_BYTES - extracted)
            try:
                with opener() as src, open(raw, "wb") as out:
                    copied = _copy_at_most(src, out, limit)
            except _READ_ERRORS as exc:
                raise CorruptArchiveError(f"{path.name} is damaged or incomplete: cannot read {member} ({exc})"
                                          ) from None
            if copied is None:
                what = (f"{member} is larger than the {image_limit:,} bytes an image may take" if limit == image_limit
                        else f"its images add up to more than {MAX_EXTRACTED_BYTES:,} bytes")
                raise UnsafeArchiveError(f"refusing to extract {path.name}: {what} (a damaged or malicious archive)")
            extracted += copied
            if _store(raw, dest / final, spec):
                reencoded.add(final)
    return reencoded


def _copy_at_most(src, out, limit: int) -> int | None:
    """Copy ``src`` to ``out`` and return the number of bytes, or None (stopping) once past ``limit``.

    An archive's stated sizes may lie; counting what actually comes out is what bounds the disk used."""
    copied = 0
    while chunk := src.read(CHUNK_SIZE):
        copied += len(chunk)
        if copied > limit:
            return None
        out.write(chunk)
    return copied


# --------------------------------------------------------------------------- verification


def pixel_sha256(path: str | os.PathLike) -> str:
    """sha256 of the decoded image as 8-bit RGB, row-major (independent of the file format)."""
    from PIL import Image

    with Image.open(path) as im:
        return hashlib.sha256(im.convert("RGB").tobytes()).hexdigest()


def verify_folder(folder: str | os.PathLike, name: str, spec: Mapping, checksums: Mapping | None = None, *,
                  deep: bool = True, reencoded: Iterable[str] = (), pixel_match: bool = False) -> None:
    """Check names, count, sizes and sha256 (where known; ``deep``: decode every image too).

    A file whose bytes differ still passes when its decoded pixels match ``pixel_sha256`` and it
    was re-encoded here (``reencoded``) or may have been (``pixel_match``).
    """
    import pooch
    from PIL import Image

    folder, checksums, reencoded = Path(folder), load_checksums(checksums), set(reencoded)
    files = sorted(p.name for p in folder.iterdir()
                   if p.is_file() and p.name.lower().endswith(IMAGE_EXTS) and not p.name.startswith("."))
    expected = expected_files(name, spec, checksums)
    problems = []
    if expected is not None:
        missing, extra = sorted(set(expected) - set(files)), sorted(set(files) - set(expected))
        problems += [f"{len(missing)} expected file(s) missing: {_short_list(missing)}"] if missing else []
        problems += [f"{len(extra)} unexpected file(s): {_short_list(extra)}"] if extra else []
    if spec.get("images") is not None and len(files) != int(spec["images"]):
        problems.append(f"found {len(files)} images, expected {spec['images']}")
    for fname in files:
        path, facts = folder / fname, (expected or {}).get(fname) or {}
        if deep or facts.get("width"):
            try:
                with Image.open(path) as im:
                    size = im.size
                    if deep and im.format == "PNG":
                        im.verify()  # checks the PNG chunk CRCs
                    elif deep:
                        im.load()
            except Exception as exc:  # Pillow raises many exception types
                problems.append(f"{fname} cannot be read as an image ({exc})")
                continue
            if facts.get("width") and size != (facts["width"], facts["height"]):
                problems.append(f"{fname} is {size[0]}x{size[1]}, expected {facts['width']}x{facts['height']}")
                continue
        want = facts.get("sha256")
        if want and (got := pooch.file_hash(str(path))) != want and not (
                (fname in reencoded or pixel_match) and facts.get("pixel_sha256")
                and pixel_sha256(path) == facts["pixel_sha256"]):
            problems.append(f"{fname}: sha256 {got[:16]}... does not match the expected {want[:16]}...")
    if problems:
        more = f"; and {len(problems) - 8} more problem(s)" if len(problems) > 8 else ""
        raise VerificationError(f"{name} failed verification: " + "; ".join(problems[:8]) + more)


def verify(name: str, root: str | os.PathLike | None = None, *, sources=None, checksums=None) -> Path:
    """Check an installed set thoroughly (every image decoded); return its folder."""
    sources = load_sources(sources)
    (name,) = _resolve([name], sources)
    folder = data_root(root) / name
    if not folder.is_dir():
        raise DownloadError(f"{name} is not installed in {folder.parent.resolve()}")
    verify_folder(folder, name, sources[name], checksums, pixel_match=True)
    return folder


# --------------------------------------------------------------------------- installing


@contextlib.contextmanager
def _staging(root: Path, name: str, target: Path, force: bool):
    """A temporary folder inside ``root`` to fill; renamed to ``target`` if the block succeeds, else removed."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp made it private
        if target.exists() or target.is_symlink():
            if not force:
                raise DownloadError(f"{target} appeared while installing; not overwriting it")
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.rename(target, old)
            os.rename(tmp, target)
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
        else:
            os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _already_installed(name: str, spec: Mapping, checksums: Mapping, target: Path, force: bool, log) -> bool:
    """True if ``target`` holds a good copy and nothing needs doing; an incomplete one needs ``force``."""
    if not (target.exists() or target.is_symlink()):
        return False
    if not target.is_dir():
        raise DownloadError(f"{target} exists and is not a folder; remove it first")
    try:
        verify_folder(target, name, spec, checksums, deep=False, pixel_match=True)
    except VerificationError as exc:
        if not force:
            raise DownloadError(f"{target} already exists but is not a complete copy of {name} ({exc}). "
                                "Remove it, or run again with --force to replace it.") from None
        return False
    if not force:
        log(f"{name}: already present in {target}")
    return not force


def _fill_from_mirror(tmp: Path, name: str, spec: Mapping, mirror: Mapping, root: Path, checksums: Mapping,
                      archives: set[Path], progress: bool, timeout: float, log) -> None:
    """Download one mirror's copy of ``name`` into ``tmp`` and verify it; a bad archive is deleted."""
    expected, archive = expected_files(name, spec, checksums), None
    try:
        if mirror.get("type") == "files":
            log(f"{name}: downloading {len(expected or ())} files from {mirror['base_url']}")
            reencoded = _fetch_files(tmp, spec, mirror, expected or {}, progress, timeout)
        else:
            fname = _archive_name(mirror)
            there = (root / DOWNLOADS_DIR / fname).exists()
            log(f"{name}: " + ("using the archive already downloaded" if there else f"downloading {mirror['url']}"))
            archive = _retrieve(mirror["url"], root / DOWNLOADS_DIR, fname, known_hash=_known_hash(mirror),
                                what="archive", progress=progress, timeout=timeout,
                                max_bytes=_download_limit(spec, mirror))
            archives.add(archive)
            reencoded = _extract_images(name, archive, tmp, spec, [mirror], expected)
        verify_folder(tmp, name, spec, checksums, reencoded=reencoded, pixel_match=mirror.get("compare") == "pixels")
    except DownloadError:
        if archive is not None:
            archive.unlink(missing_ok=True)
            archives.discard(archive)
        raise


def _fetch_files(tmp: Path, spec: Mapping, mirror: Mapping, expected: Mapping, progress: bool,
                 timeout: float) -> set[str]:
    """Fetch a set published as one URL per image (names from the checksums); return re-encoded names."""
    if not expected:
        raise DownloadError("a file-by-file source needs the file names, from the checksum table")
    base_url, ext, reencoded = mirror["base_url"].rstrip("/") + "/", mirror.get("source_ext"), set()
    files = sorted(expected)
    if progress and importlib.util.find_spec("tqdm") is not None:
        from tqdm import tqdm

        files = tqdm(files, unit="file", leave=False, disable=None)
    for final in files:
        source = posixpath.splitext(final)[0] + ext if ext else final
        sha = expected[final].get("sha256") if not ext and mirror.get("compare") != "pixels" else None
        raw = _retrieve(base_url + urllib.parse.quote(source), tmp, ".raw-" + final,
                        known_hash=f"sha256:{sha}" if sha else None, progress=False, timeout=timeout,
                        max_bytes=_image_limit(expected[final]), what="image")
        if _store(raw, tmp / final, spec):
            reencoded.add(final)
    return reencoded


def _install(name: str, spec: Mapping, root: Path, checksums: Mapping, *, force: bool, progress: bool,
             timeout: float, archives: set[Path], log) -> Path:
    """Install one set from the first mirror that works; say how to do it by hand if none does."""
    target = root / name
    if _already_installed(name, spec, checksums, target, force, log):
        return target
    failures: list[DownloadError] = []
    for mirror in spec.get("mirrors") or []:
        try:
            with _staging(root, name, target, force) as tmp:
                _fill_from_mirror(tmp, name, spec, mirror, root, checksums, archives, progress, timeout, log)
        except DownloadError as exc:
            failures.append(exc)
            if mirror is not spec["mirrors"][-1]:
                where = mirror.get("url") or mirror.get("base_url")
                log(f"{name}: {where} did not work ({type(exc).__name__}); trying the next source")
            continue
        log(f"{name}: installed and verified in {target}")
        return target
    details = "\n".join(f"  - {exc}" for exc in failures) or "  - no sources are listed"
    how = _manual_instructions(name, spec, root, checksums)
    if failures and all(isinstance(exc, NetworkError) for exc in failures):
        raise NetworkError(f"could not download {name}: no source could be reached.\n{details}\n{how}")
    cls = next((type(e) for e in failures if not isinstance(e, NetworkError)), DownloadError)
    raise cls(f"could not install {name}; nothing was installed.\n{details}\n{how}")


def _manual_instructions(name: str, spec: Mapping, root: Path, checksums: Mapping) -> str:
    mirrors, manual = spec.get("mirrors") or [], spec.get("manual") or {}
    archives = [m for m in mirrors if m.get("type") == "archive"]
    url, what = manual.get("url"), manual.get("what")
    if not url and archives:
        url, what = archives[0]["url"], what or f"the archive {_archive_name(archives[0])}"
    url = url or (mirrors[0].get("base_url") if mirrors else "?")
    others = list(dict.fromkeys(u for m in mirrors if (u := m.get("url") or m.get("base_url")) and u != url))
    target, expected = (root / name).resolve(), expected_files(name, spec, checksums)
    return "\n".join([f"To install {name} by hand, download {what or 'the image files'} from", f"    {url}"]
                     + (["  (other sources: " + ", ".join(others) + ")"] if others else []) + [
        "and then either pass the downloaded archive (or a zip/tar of the downloaded folder) to",
        f"    python -m srlib download {name} --from-archive PATH --root {root}",
        "or copy the high-resolution image files themselves, flat, into",
        f"    {target}{os.sep}" + (f" (e.g. {target / sorted(expected)[0]})" if expected else "")])


def _check_timeout(timeout) -> None:
    """A timeout must be a finite number of seconds above zero (requests refuses 0 in words that say otherwise)."""
    number = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    if not (number and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds above 0, got {timeout!r}; the default is "
                         f"{DEFAULT_TIMEOUT:g}")


def _make_root(root: Path) -> Path:
    """``root``, created if needed; a file or an unwritable place in its way is one clear error."""
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise DownloadError(f"data root {root}: {existing} is a file, not a folder; give --root (or SRLIB_DATA) "
                            "a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the data root {root} ({exc.strerror or exc}); give --root (or "
                            "SRLIB_DATA) a folder you can write in") from None
    return root


def download(names: str | Iterable[str], root: str | os.PathLike | None = None, *, sources=None,
             checksums=None, force: bool = False, keep_archives: bool = False, progress: bool = True,
             timeout: float = DEFAULT_TIMEOUT, log: Callable[[str], None] | None = print):
    """Download, verify and install sets as ``<root>/<name>/``: one name (returns its folder) or a list.

    A list, ``"all"`` included, returns ``{name: folder}``; an archive shared by several sets is
    downloaded once. ``sources`` / ``checksums`` replace the shipped tables. Every set is tried,
    then a failure is raised: :class:`NetworkError` (saying how to install by hand) when no
    mirror could be reached, another :class:`DownloadError` otherwise.
    """
    log = log or (lambda _msg: None)
    _check_timeout(timeout)
    sources, checksums = load_sources(sources), load_checksums(checksums)
    wanted = _resolve([names] if isinstance(names, str) else names, sources)
    for name in wanted:  # before anything is written
        _check_names(name, sources[name], checksums)
    root = _make_root(data_root(root))
    archives: set[Path] = set()
    done, errors = {}, []
    try:
        for name in wanted:
            try:
                done[name] = _install(name, sources[name], root, checksums, force=force, progress=progress,
                                      timeout=timeout, archives=archives, log=log)
            except DownloadError as exc:
                errors.append(exc)
    finally:
        for archive in archives if not keep_archives else ():
            archive.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (root / DOWNLOADS_DIR).rmdir()  # only if empty
    if errors:
        raise errors[0] if len(errors) == 1 else DownloadError("\n\n".join(map(str, errors)))
    return done[wanted[0]] if isinstance(names, str) else done


def install_from_archive(name: str, archive: str | os.PathLike, root: str | os.PathLike | None = None, *,
                         sources=None, checksums=None, force: bool = False,
                         log: Callable[[str], None] | None = print) -> Path:
    """Install ``name`` from an archive downloaded by hand, with the checks of :func:`download`.

    The archive is left untouched. Its images are found with the layouts of the known sources,
    else in the one folder holding the expected files; re-encoded copies pass on their pixels.
    """
    log = log or (lambda _msg: None)
    sources, checksums = load_sources(sources), load_checksums(checksums)
    (name,) = _resolve([name], sources)
    spec, archive, root = sources[name], Path(archive).expanduser(), data_root(root)
    _check_names(name, spec, checksums)
    if not archive.is_file():
        raise DownloadError(f"{archive} does not exist or is not a file")
    root = _make_root(root)
    if _already_installed(name, spec, checksums, root / name, force, log):
        return root / name
    rules = []
    for mirror in spec.get("mirrors") or []:
        if mirror.get("type") == "archive":
            rules.append(mirror)
        elif mirror.get("archive_dir"):
            rules.append({"member_dir": mirror["archive_dir"], "pattern": "*" + mirror.get("source_ext", "")})
    with _staging(root, name, root / name, force) as tmp:
        reencoded = _extract_images(name, archive, tmp, spec, rules, expected_files(name, spec, checksums))
        verify_folder(tmp, name, spec, checksums, reencoded=reencoded, pixel_match=True)
    log(f"{name}: installed and verified in {root / name}")
    return root / name


# --------------------------------------------------------------------------- command line

DESCRIPTION = "Download, verify and install the standard super-resolution data sets as <root>/<Name>/<images>."


def format_table(sources=None) -> str:
    """The ``--list`` table: name, number of images, size, description, first source."""
    rows = [("name", "images", "size", "what it is", "source")]
    for name, spec in load_sources(sources).items():
        first = (spec.get("mirrors") or [{}])[0]
        url = first.get("url") or first.get("base_url", "") + ("<file>" if first.get("type") == "files" else "")
        rows.append((name, str(spec.get("images", "?")), spec.get("size", "?"), spec.get("description", ""), url))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[j].ljust(widths[j]) for j in range(4)) + "  " + r[4] for r in rows]
    return "\n".join(lines[:1] + ["  ".join("-" * w for w in widths) + "  ------"] + lines[1:])


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above zero."""
    try:
        value = float(text)
        _check_timeout(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}") from None
    return value


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options shared by ``python -m srlib download`` and ``data_scripts/download.py``."""
    p.add_argument("names", nargs="*", help="data sets to install, or 'all' (see --list)")
    p.add_argument("--list", action="store_true", help="show the available data sets and exit")
    p.add_argument("--root", help="data root (default: $SRLIB_DATA, else ./data)")
    p.add_argument("--from-archive", metavar="PATH", help="install from an archive downloaded by hand")
    p.add_argument("--force", action="store_true", help="replace a set that is already installed")
    p.add_argument("--keep-archives", action="store_true", help=f"keep the archives in <root>/{DOWNLOADS_DIR}")
    p.add_argument("--sources", metavar="JSON", help="use this data set table instead of the shipped one")
    p.add_argument("--checksums", metavar="TSV", help="use this checksum table instead of the shipped one")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT,
                   help=f"seconds without progress before a download is given up (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    return p


def run(args: argparse.Namespace) -> int:
    """Carry out parsed options. Exit code 0 when every set is installed and verified, 1 if not, 2 on misuse."""
    try:
        tables = {}
        for table, option in ((args.sources, "sources"), (args.checksums, "checksums")):
            try:
                tables[option] = (load_sources if option == "sources" else load_checksums)(table)
            except OSError as exc:
                raise DownloadError(f"--{option} {table}: {exc.strerror or exc}; give the path of a "
                                    f"{'JSON' if option == 'sources' else 'TSV'} table, or leave --{option} out "
                                    "for the shipped one") from None
        if args.list:
            print(format_table(tables["sources"]))
            print(f"\ndata root: {data_root(args.root).resolve()}  (set with --root or SRLIB_DATA)")
            return 0
        names = _resolve(args.names, tables["sources"])
        if not names:
            raise DownloadError("name at least one data set, 'all', or use --list")
        root = data_root(args.root)
        in_the_way = next((p for p in (root, *root.parents) if p.exists() and not p.is_dir()), None)
        if in_the_way is not None:
            raise DownloadError(f"data root {root}: {in_the_way} is a file, not a folder; give --root (or "
                                "SRLIB_DATA) a folder")
    except (OSError, ValueError, KeyError, DownloadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.from_archive:
            for n in names:
                install_from_archive(n, args.from_archive, args.root, force=args.force, **tables)
        else:
            download(names, args.root, force=args.force, keep_archives=args.keep_archives,
                     progress=not args.no_progress, timeout=args.timeout, **tables)
    except DownloadError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a full disk while extracting
        print(f"\nerror: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}; nothing was installed "
              "for the set being written; free space or choose another --root", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The command line: ``python -m srlib download ...`` and ``python data_scripts/download.py ...``."""
    return run(add_arguments(argparse.ArgumentParser(prog=prog, description=DESCRIPTION)).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
