"""Fetching with pooch, through a downloader that resumes an interrupted transfer, gives up on a
stalled server and stops a download larger than expected."""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

from . import DownloadError, NetworkError, VerificationError

CHUNK_SIZE = 1 << 16
DEFAULT_TIMEOUT = 60.0
STALL_BYTES = 16 << 10  # fewer bytes than this in a whole timeout: the transfer has stalled


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
