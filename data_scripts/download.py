#!/usr/bin/env python
"""Download the standard super-resolution data sets.

Every set is installed flat as ``<root>/<Name>/<image files>`` (for example
``data/Set5/baby.png``), where ``<root>`` is ``--root``, else the environment
variable ``SRLIB_DATA``, else ``./data``.

    python data_scripts/download.py --list
    python data_scripts/download.py Set5 T91 --root ./data
    python data_scripts/download.py all
    python data_scripts/download.py Urban100 --from-archive ~/Downloads/Urban100_HR.tar.gz

What happens for one set:

1. The archive is downloaded to ``<root>/.downloads/<file>.part`` (resumed with an
   HTTP Range request when a previous attempt was interrupted and the server
   supports it) and renamed to ``<file>`` once complete. Sets published as single
   files are fetched one by one instead.
2. The archive checksum is checked when one is known.
3. Every member is checked before anything is written: absolute paths, ``..``
   components, links and special files make the whole archive rejected.
4. The high-resolution images are extracted into a temporary folder inside
   ``<root>``, renamed / converted where the source needs it, and verified
   (file names, image count, image sizes and sha256 where known, and every file
   must open as an image).
5. Only then is the temporary folder renamed to ``<root>/<Name>``.

Whatever fails on the way (corrupt archive, unsafe member, checksum mismatch)
is removed again and reported; a half-written set is never left behind. An
interrupted download keeps its ``.part`` file so that the next run resumes it.

The data set table lives in ``sources.json`` next to this file and the
per-image checksums in ``checksums.tsv``. Only the standard library, tqdm and
Pillow are used.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import http.client
import json
import os
import posixpath
import re
import shutil
import socket
import ssl
import stat
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is a declared dependency
    tqdm = None

HERE = Path(__file__).resolve().parent
SOURCES_FILE = HERE / "sources.json"
CHECKSUMS_FILE = HERE / "checksums.tsv"

IMAGE_EXTS = (".png", ".bmp", ".jpg", ".jpeg")
DOWNLOADS_DIR = ".downloads"
USER_AGENT = "srlib-data-download/1.0"
CHUNK_SIZE = 1 << 16
DEFAULT_TIMEOUT = 60.0

__all__ = [
    "DownloadError",
    "NetworkError",
    "VerificationError",
    "UnsafeArchiveError",
    "CorruptArchiveError",
    "data_root",
    "load_sources",
    "load_checksums",
    "dataset_names",
    "download",
    "download_many",
    "install_from_archive",
    "fetch",
    "verify_folder",
    "main",
]


# --------------------------------------------------------------------------- errors


class DownloadError(Exception):
    """A data set could not be installed. The message is meant for the user."""


class NetworkError(DownloadError):
    """The server could not be reached, or the transfer was interrupted."""


class VerificationError(DownloadError):
    """Downloaded data does not match what was expected (checksum, count, names)."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target folder."""


class CorruptArchiveError(DownloadError):
    """An archive cannot be read: truncated, damaged or of an unknown format."""


# --------------------------------------------------------------------------- tables


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$SRLIB_DATA``, else ``./data``."""
    if root is None or str(root) == "":
        root = os.environ.get("SRLIB_DATA") or "data"
    return Path(root).expanduser()


def load_sources(path: str | os.PathLike | None = None) -> dict:
    """Read a data set table (``sources.json`` by default); keys starting with ``_`` are comments."""
    path = Path(path) if path is not None else SOURCES_FILE
    with open(path, encoding="utf-8") as fh:
        table = json.load(fh)
    return {k: v for k, v in table.items() if not k.startswith("_")}


def load_checksums(path: str | os.PathLike | None = None) -> dict[str, dict[str, dict]]:
    """Read ``checksums.tsv``: ``{dataset: {file: {width, height, sha256, pixel_sha256}}}``."""
    path = Path(path) if path is not None else CHECKSUMS_FILE
    table: dict[str, dict[str, dict]] = {}
    if not path.exists():
        return table
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            entry = {
                "width": int(row["width"]) if row.get("width") else None,
                "height": int(row["height"]) if row.get("height") else None,
                "sha256": (row.get("sha256") or "").lower() or None,
                "pixel_sha256": (row.get("pixel_sha256") or "").lower() or None,
            }
            table.setdefault(row["dataset"], {})[row["file"]] = entry
    return table


def _as_sources(sources) -> dict:
    if sources is None:
        return load_sources()
    if isinstance(sources, (str, os.PathLike)):
        return load_sources(sources)
    return {k: v for k, v in dict(sources).items() if not str(k).startswith("_")}


def _as_checksums(checksums) -> dict:
    if checksums is None:
        return load_checksums()
    if isinstance(checksums, (str, os.PathLike)):
        return load_checksums(checksums)
    return dict(checksums)


def dataset_names(sources=None) -> list[str]:
    return list(_as_sources(sources))


def _canonical_name(name: str, sources: Mapping) -> str:
    if name in sources:
        return name
    folded = {k.lower(): k for k in sources}
    if name.lower() in folded:
        return folded[name.lower()]
    raise DownloadError(
        f"unknown data set {name!r}; known sets: {', '.join(sources)} (or 'all')"
    )


def expected_files(name: str, spec: Mapping, checksums: Mapping) -> dict[str, dict] | None:
    """Installed file name -> known facts (may be empty), or None when names are not known."""
    if name in checksums and checksums[name]:
        return dict(checksums[name])
    names = spec.get("names")
    if names:
        fmt = names["format"]
        return {fmt.format(i): {} for i in range(int(names["first"]), int(names["last"]) + 1)}
    return None


# --------------------------------------------------------------------------- helpers


def _short_list(items: Iterable[str], limit: int = 5) -> str:
    items = list(items)
    text = ", ".join(items[:limit])
    if len(items) > limit:
        text += f", ... ({len(items)} in all)"
    return text


def _human(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def _file_digests(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            for h in hashers.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashers.items()}


def sha256_file(path: str | os.PathLike) -> str:
    return _file_digests(Path(path), ["sha256"])["sha256"]


def pixel_sha256(path: str | os.PathLike) -> str:
    """sha256 of the decoded image as 8-bit RGB, row-major (independent of the file format)."""
    from PIL import Image

    with Image.open(path) as im:
        return hashlib.sha256(im.convert("RGB").tobytes()).hexdigest()


def _progress(total=None, initial=0, desc=None, unit="B", enabled=True):
    if tqdm is None or not enabled:
        return _NoBar()
    scale = unit == "B"
    return tqdm(
        disable=None,  # shown on a terminal only, not in logs
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        unit_scale=scale,
        unit_divisor=1024 if scale else 1000,
        leave=False,
        dynamic_ncols=True,
    )


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def close(self):
        pass


def _network_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.gaierror):
        return "the host name could not be resolved (no network connection or DNS failure)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "the connection timed out"
    if isinstance(reason, ssl.SSLError):
        return f"TLS/SSL error ({reason})"
    if isinstance(reason, ConnectionResetError):
        return "the connection was reset by the server"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or reason.__class__.__name__


# --------------------------------------------------------------------------- HTTP


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` -> (100, 1000); ``bytes */1000`` -> (None, 1000)."""
    if not value:
        return None, None
    m = re.match(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value)
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def fetch(
    url: str,
    dest: str | os.PathLike,
    *,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    desc: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``; resume a previous ``.part`` if possible.

    A ``.part`` file left by an interrupted run is continued with a ``Range``
    request (guarded by ``If-Range`` with the ETag / Last-Modified seen before);
    if the server answers with the whole file instead, the download restarts
    from zero. Raises :class:`NetworkError` when the server cannot be reached or
    the transfer breaks off (the ``.part`` file is kept for the next attempt),
    and :class:`DownloadError` for HTTP errors or a web page instead of a file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    meta = dest.with_name(dest.name + ".part.json")

    offset = 0
    validator = None
    if part.exists():
        info = _read_json(meta)
        if info.get("url", url) == url and part.stat().st_size > 0:
            offset = part.stat().st_size
            validator = info.get("etag") or info.get("last_modified")
            if validator and validator.startswith("W/"):
                validator = None  # weak validators are not allowed in If-Range
        else:
            part.unlink()

    for _attempt in range(3):
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            content_range = exc.headers.get("Content-Range") if exc.headers else None
            exc.close()
            if exc.code == 416 and offset:
                _, total = _parse_content_range(content_range)
                if total is not None and total == offset:
                    break  # the .part file already holds the whole file
                part.unlink(missing_ok=True)
                offset, validator = 0, None
                continue
            raise DownloadError(f"{url}: HTTP error {exc.code} ({exc.reason})") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            raise NetworkError(f"cannot reach {url}: {_network_reason(exc)}") from None

        with response:
            content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type in ("text/html", "application/xhtml+xml"):
                part.unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
                raise DownloadError(
                    f"{url} returned a web page instead of the file (the link may need a "
                    "browser, e.g. a confirmation page, or it may have moved)"
                )
            length = response.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if offset and response.status == 206:
                start, total = _parse_content_range(response.headers.get("Content-Range"))
                if start != offset:
                    # The server sent some other range: start again cleanly.
                    part.unlink(missing_ok=True)
                    offset, validator = 0, None
                    continue
                if total is None and length is not None:
                    total = offset + length
                mode = "ab"
            else:
                # Fresh download, or the server ignored / refused the Range request.
                offset = 0
                total = length
                mode = "wb"
            with open(meta, "w", encoding="utf-8") as fh:
                json.dump(
                    {
                        "url": url,
                        "etag": response.headers.get("ETag"),
                        "last_modified": response.headers.get("Last-Modified"),
                    },
                    fh,
                )
            received = offset
            with open(part, mode) as out, _progress(
                total=total, initial=offset, desc=desc or dest.name, enabled=progress
            ) as bar:
                try:
                    while True:
                        chunk = response.read(CHUNK_SIZE)
                        if not chunk:
                            break
                        out.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                except (OSError, http.client.HTTPException) as exc:
                    raise NetworkError(
                        f"download of {url} was interrupted after {_human(received)}"
                        f" ({_network_reason(exc)}); run the same command again to resume"
                    ) from None
            if total is not None and received < total:
                raise NetworkError(
                    f"download of {url} stopped after {_human(received)} of {_human(total)};"
                    " run the same command again to resume"
                )
            if total is not None and received > total:
                part.unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
                raise DownloadError(f"{url}: received more data than announced; removed the download")
        break
    else:
        raise DownloadError(f"{url}: the server did not send a usable response")

    os.replace(part, dest)
    meta.unlink(missing_ok=True)
    return dest


# --------------------------------------------------------------------------- archives


@dataclass
class _Member:
    name: str  # path inside the archive, '/'-separated
    kind: str  # file | dir | symlink | hardlink | special
    size: int
    ref: object  # ZipInfo or TarInfo


def _unsafe_reason(member: _Member) -> str | None:
    name = member.name
    if member.kind == "symlink":
        return "it is a symbolic link"
    if member.kind == "hardlink":
        return "it is a hard link"
    if member.kind == "special":
        return "it is a device, FIFO or other special file"
    if "\x00" in name:
        return "its name contains a NUL byte"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "it has an absolute path"
    if ".." in norm.split("/"):
        return "its path contains '..'"
    return None


class _Archive:
    """Read-only view of a zip or tar archive with a uniform member list."""

    def __init__(self, path: Path):
        self.path = path
        self.kind = None
        self._zip = None
        self._tar = None
        try:
            if zipfile.is_zipfile(path):
                self._zip = zipfile.ZipFile(path)
                self.kind = "zip"
            else:
                self._tar = tarfile.open(path, "r:*")
                self.kind = "tar"
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise CorruptArchiveError(
                f"{path.name} is not a readable zip or tar archive ({exc}); "
                "the file is corrupt or incomplete"
            ) from None

    def close(self):
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def members(self) -> list[_Member]:
        try:
            if self._zip is not None:
                out = []
                for info in self._zip.infolist():
                    # Unix file type bits, when present, live in the high 16 bits.
                    file_type = stat.S_IFMT(info.external_attr >> 16)
                    if file_type == stat.S_IFLNK:
                        kind = "symlink"
                    elif info.is_dir() or file_type == stat.S_IFDIR:
                        kind = "dir"
                    elif file_type not in (0, stat.S_IFREG):
                        kind = "special"
                    else:
                        kind = "file"
                    out.append(_Member(info.filename, kind, info.file_size, info))
                return out
            out = []
            for info in self._tar.getmembers():  # reads the whole archive: detects truncation
                if info.issym():
                    kind = "symlink"
                elif info.islnk():
                    kind = "hardlink"
                elif info.isdir():
                    kind = "dir"
                elif info.isfile():
                    kind = "file"
                else:
                    kind = "special"
                out.append(_Member(info.name, kind, info.size, info))
            return out
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise CorruptArchiveError(
                f"{self.path.name} is damaged or incomplete ({exc})"
            ) from None

    def copy_member(self, member: _Member, dest: Path) -> None:
        try:
            if self._zip is not None:
                src = self._zip.open(member.ref)
            else:
                src = self._tar.extractfile(member.ref)
                if src is None:
                    raise CorruptArchiveError(f"{self.path.name}: cannot read {member.name}")
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK_SIZE)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
            raise CorruptArchiveError(
                f"{self.path.name} is damaged or incomplete: cannot read {member.name} ({exc})"
            ) from None


def _check_members_safe(archive: _Archive, members: list[_Member]) -> None:
    bad = []
    for m in members:
        reason = _unsafe_reason(m)
        if reason:
            bad.append(f"{m.name!r} ({reason})")
    if bad:
        raise UnsafeArchiveError(
            f"refusing to extract {archive.path.name}: member(s) would escape the target folder "
            f"or are not plain files: {_short_list(bad)}"
        )


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTS)


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return "__MACOSX" in parts or parts[-1].startswith("._") or parts[-1].startswith(".")


def _dir_matches(parent: str, member_dir: str | None) -> bool:
    if member_dir is None:
        return True
    member_dir = member_dir.strip("/")
    if member_dir in ("", "."):
        return parent == ""
    return parent == member_dir or parent.endswith("/" + member_dir)


def _final_name(base: str, rename: Mapping[str, str], spec: Mapping) -> str:
    name = rename.get(base, base)
    if spec.get("store_as") == "png" and not name.lower().endswith(".png"):
        name = posixpath.splitext(name)[0] + ".png"
    return name


def _select_members(
    name: str,
    archive: _Archive,
    members: list[_Member],
    spec: Mapping,
    rules: list[Mapping],
    expected: Mapping | None,
) -> tuple[list[_Member], dict]:
    images = [
        m for m in members if m.kind == "file" and _is_image_name(m.name) and not _is_junk(m.name)
    ]
    for rule in rules:
        pattern = (rule.get("pattern") or "*").lower()
        chosen = [
            m
            for m in images
            if _dir_matches(posixpath.dirname(m.name.rstrip("/")), rule.get("member_dir"))
            and fnmatch.fnmatchcase(posixpath.basename(m.name).lower(), pattern)
        ]
        if chosen:
            return chosen, dict(rule.get("rename") or {})

    # No known layout matched (e.g. an archive made by hand): look for the one folder
    # that holds the expected files (or the expected number of images).
    by_dir: dict[str, list[_Member]] = {}
    for m in images:
        by_dir.setdefault(posixpath.dirname(m.name), []).append(m)
    want = set(expected) if expected else None
    count = spec.get("images")
    candidates = []
    for folder, group in by_dir.items():
        finals = {_final_name(posixpath.basename(m.name), {}, spec) for m in group}
        if want is not None and want <= finals:
            candidates.append(folder)
        elif want is None and count is not None and len(group) == int(count):
            candidates.append(folder)
    if len(candidates) == 1:
        group = by_dir[candidates[0]]
        if want is not None:
            group = [
                m for m in group if _final_name(posixpath.basename(m.name), {}, spec) in want
            ]
        return group, {}
    folders = sorted(f"{d or '.'}/ ({len(g)} images)" for d, g in by_dir.items())
    looked_for = [r.get("member_dir") for r in rules if r.get("member_dir")]
    raise DownloadError(
        f"could not find the {name} images in {archive.path.name}"
        + (f" (looked for a folder named {', '.join(sorted(set(looked_for)))})" if looked_for else "")
        + (f"; image folders in the archive: {_short_list(folders)}" if folders else "; it holds no images")
    )


def _store_file(src: Path, final: str, spec: Mapping) -> bool:
    """Move/convert ``src`` to ``src.parent / final``. Returns True if the image was re-encoded."""
    dest = src.parent / final
    if spec.get("store_as") == "png" and not src.name.lower().endswith(".png"):
        from PIL import Image

        try:
            with Image.open(src) as im:
                im.load()
                if im.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
                    im = im.convert("RGB")
                im.save(dest, format="PNG")
        except Exception as exc:  # Pillow raises many exception types
            raise VerificationError(f"{src.name} cannot be read as an image ({exc})") from None
        src.unlink()
        return True
    if src != dest:
        os.replace(src, dest)
    return False


def _extract_images(
    name: str,
    archive_path: Path,
    dest: Path,
    spec: Mapping,
    rules: list[Mapping],
    expected: Mapping | None,
) -> set[str]:
    """Extract the HR images of ``name`` flat into ``dest``. Returns names of re-encoded files."""
    reencoded: set[str] = set()
    with _Archive(archive_path) as archive:
        members = archive.members()
        _check_members_safe(archive, members)
        chosen, rename = _select_members(name, archive, members, spec, rules, expected)
        finals: dict[str, str] = {}
        for m in chosen:
            base = posixpath.basename(m.name)
            final = _final_name(base, rename, spec)
            if final in finals:
                raise VerificationError(
                    f"{archive_path.name}: {finals[final]!r} and {m.name!r} would both be "
                    f"installed as {final}"
                )
            finals[final] = m.name
        for m in chosen:
            base = posixpath.basename(m.name)
            raw = dest / (".raw-" + base)
            archive.copy_member(m, raw)
            if _store_file(raw, _final_name(base, rename, spec), spec):
                reencoded.add(_final_name(base, rename, spec))
    return reencoded


# --------------------------------------------------------------------------- verification


def verify_folder(
    folder: str | os.PathLike,
    name: str,
    spec: Mapping,
    checksums: Mapping | None = None,
    *,
    deep: bool = True,
    reencoded: Iterable[str] = (),
    pixel_match: bool = False,
) -> None:
    """Check an installed (or about to be installed) set; raise VerificationError on problems.

    Checks the file names (when known), the image count, width/height and sha256
    (when known, i.e. for sets listed in checksums.tsv). With ``deep`` every image
    is also opened with Pillow. A file whose bytes differ from the expected sha256
    is still accepted when its decoded pixels match ``pixel_sha256`` and it was
    re-encoded on install (``reencoded``) or the mirror is known to re-encode
    (``pixel_match``).
    """
    folder = Path(folder)
    checksums = load_checksums() if checksums is None else checksums
    reencoded = set(reencoded)
    files = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and p.name.lower().endswith(IMAGE_EXTS) and not p.name.startswith(".")
    )
    expected = expected_files(name, spec, checksums)
    problems: list[str] = []
    if expected is not None:
        missing = sorted(set(expected) - set(files))
        extra = sorted(set(files) - set(expected))
        if missing:
            problems.append(f"{len(missing)} expected file(s) missing: {_short_list(missing)}")
        if extra:
            problems.append(f"{len(extra)} unexpected file(s): {_short_list(extra)}")
    count = spec.get("images")
    if count is not None and len(files) != int(count):
        problems.append(f"found {len(files)} images, expected {count}")

    has_checksums = bool(checksums.get(name))
    if deep or has_checksums:
        from PIL import Image

        for fname in files:
            path = folder / fname
            facts = (expected or {}).get(fname) or {}
            if deep or facts.get("width"):
                try:
                    with Image.open(path) as im:
                        size = im.size
                        if deep:
                            if im.format == "PNG":
                                im.verify()
                            else:
                                im.load()
                except Exception as exc:  # Pillow raises many exception types
                    problems.append(f"{fname} cannot be read as an image ({exc})")
                    continue
                if facts.get("width") and size != (facts["width"], facts["height"]):
                    problems.append(
                        f"{fname} is {size[0]}x{size[1]}, expected {facts['width']}x{facts['height']}"
                    )
                    continue
            want = facts.get("sha256")
            if want:
                got = sha256_file(path)
                if got != want:
                    pixels_ok = (
                        (fname in reencoded or pixel_match)
                        and facts.get("pixel_sha256")
                        and pixel_sha256(path) == facts["pixel_sha256"]
                    )
                    if not pixels_ok:
                        problems.append(
                            f"{fname}: sha256 {got[:16]}... does not match the expected {want[:16]}..."
                        )
    if problems:
        raise VerificationError(
            f"{name} failed verification: " + "; ".join(problems[:8])
            + (f"; and {len(problems) - 8} more problem(s)" if len(problems) > 8 else "")
        )


# --------------------------------------------------------------------------- installing


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _commit(tmp: Path, target: Path, force: bool) -> None:
    os.chmod(tmp, 0o777 & ~_umask())
    if target.exists() or target.is_symlink():
        if not force:
            raise DownloadError(f"{target} appeared while installing; not overwriting it")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
        os.rename(tmp, target)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    else:
        os.rename(tmp, target)


def _existing_ok(name, spec, checksums, target: Path, force: bool, log) -> bool:
    """True if ``target`` already holds a good copy and nothing needs doing."""
    if not (target.exists() or target.is_symlink()):
        return False
    if not target.is_dir():
        raise DownloadError(f"{target} exists and is not a folder; remove it first")
    try:
        verify_folder(target, name, spec, checksums, deep=False, pixel_match=True)
    except VerificationError as exc:
        if force:
            return False
        raise DownloadError(
            f"{target} already exists but is not a complete copy of {name} ({exc}). "
            "Remove it, or run again with --force to replace it."
        ) from None
    if force:
        return False
    log(f"{name}: already present in {target}")
    return True


def _archive_name(mirror: Mapping) -> str:
    if mirror.get("filename"):
        return mirror["filename"]
    base = posixpath.basename(urllib.parse.urlparse(mirror["url"]).path)
    return base or "download"


def _check_archive_checksum(path: Path, mirror: Mapping) -> None:
    wanted = {a: (mirror.get(a) or "").lower() for a in ("sha256", "md5") if mirror.get(a)}
    if not wanted:
        return
    got = _file_digests(path, wanted)
    for algo, value in wanted.items():
        if got[algo] != value:
            raise VerificationError(
                f"{path.name}: {algo} of the downloaded archive is {got[algo]}, expected {value}"
            )


def _manual_instructions(name: str, spec: Mapping, root: Path, checksums: Mapping) -> str:
    manual = spec.get("manual") or {}
    mirrors = spec.get("mirrors") or []
    url = manual.get("url")
    what = manual.get("what")
    if not url:
        archives = [m for m in mirrors if m.get("type") == "archive"]
        if archives:
            url = archives[0]["url"]
            what = what or f"the archive {_archive_name(archives[0])}"
        elif mirrors:
            url = mirrors[0].get("base_url")
    target = (root / name).resolve()
    expected = expected_files(name, spec, checksums)
    example = f" (e.g. {target / sorted(expected)[0]})" if expected else ""
    lines = [f"To install {name} by hand, download {what or 'the image files'} from", f"    {url}"]
    other = []
    for m in mirrors:
        u = m.get("url") or m.get("base_url")
        if u and u != url and u not in other:
            other.append(u)
    if other:
        lines.append("  (other sources: " + ", ".join(other) + ")")
    lines += [
        "and then either pass the downloaded archive (or a zip/tar of the downloaded folder) to",
        f"    python data_scripts/download.py {name} --from-archive PATH --root {root}",
        "or copy the high-resolution image files themselves, flat, into",
        f"    {target}{os.sep}{example}",
    ]
    return "\n".join(lines)


def _install_from_mirror(
    name: str,
    spec: Mapping,
    mirror: Mapping,
    root: Path,
    checksums: Mapping,
    *,
    force: bool,
    progress: bool,
    timeout: float,
    archives_used: set[Path] | None,
    log,
) -> Path:
    target = root / name
    expected = expected_files(name, spec, checksums)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
    archive: Path | None = None
    try:
        if mirror.get("type") == "files":
            if expected is None:
                raise DownloadError(f"{name}: a file-by-file source needs the file list in checksums")
            log(f"{name}: downloading {len(expected)} files from {mirror['base_url']}")
            reencoded = _fetch_files(name, spec, mirror, tmp, expected, progress, timeout)
        else:
            archive = root / DOWNLOADS_DIR / _archive_name(mirror)
            if not archive.exists():
                log(f"{name}: downloading {mirror['url']}")
                fetch(mirror["url"], archive, progress=progress, timeout=timeout, desc=archive.name)
            else:
                log(f"{name}: using the archive already downloaded to {archive}")
            try:
                _check_archive_checksum(archive, mirror)
                reencoded = _extract_images(name, archive, tmp, spec, [mirror], expected)
                verify_folder(
                    tmp, name, spec, checksums, deep=True, reencoded=reencoded,
                    pixel_match=mirror.get("compare") == "pixels",
                )
            except DownloadError:
                archive.unlink(missing_ok=True)  # a bad archive is never kept
                raise
        if mirror.get("type") == "files":
            verify_folder(
                tmp, name, spec, checksums, deep=True, reencoded=reencoded,
                pixel_match=mirror.get("compare") == "pixels",
            )
        _commit(tmp, target, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if archive is not None:
        if archives_used is not None:
            archives_used.add(archive)
    return target


def _fetch_files(name, spec, mirror, tmp: Path, expected, progress, timeout) -> set[str]:
    base_url = mirror["base_url"]
    if not base_url.endswith("/"):
        base_url += "/"
    source_ext = mirror.get("source_ext")
    reencoded: set[str] = set()
    log_bar = _progress(total=len(expected), desc=name, unit="file", enabled=progress)
    with log_bar as bar:
        for final in sorted(expected):
            source = posixpath.splitext(final)[0] + source_ext if source_ext else final
            url = base_url + urllib.parse.quote(source)
            raw = tmp / (".raw-" + source)
            fetch(url, raw, progress=False, timeout=timeout)
            if _store_file(raw, final, spec):
                reencoded.add(final)
            bar.update(1)
    return reencoded


def download(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    sources=None,
    checksums=None,
    force: bool = False,
    keep_archive: bool = False,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    log: Callable[[str], None] | None = print,
    _archives_used: set[Path] | None = None,
) -> Path:
    """Download, verify and install one data set as ``<root>/<name>/``; return that folder.

    ``sources`` is a data set table (dict, or path to a JSON file) replacing
    ``sources.json``; ``checksums`` likewise replaces ``checksums.tsv`` (dict as
    returned by :func:`load_checksums`, or a path). Mirrors are tried in order.
    Raises :class:`NetworkError` when no mirror could be reached (the message says
    how to install the set by hand), or another :class:`DownloadError`.
    """
    log = log or (lambda _msg: None)
    sources = _as_sources(sources)
    checksums = _as_checksums(checksums)
    name = _canonical_name(name, sources)
    spec = sources[name]
    root = data_root(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if _existing_ok(name, spec, checksums, target, force, log):
        return target

    local_archives: set[Path] = set() if _archives_used is None else _archives_used
    failures: list[tuple[str, DownloadError]] = []
    for mirror in spec.get("mirrors") or []:
        where = mirror.get("url") or mirror.get("base_url")
        try:
            path = _install_from_mirror(
                name, spec, mirror, root, checksums,
                force=force, progress=progress, timeout=timeout,
                archives_used=local_archives, log=log,
            )
        except DownloadError as exc:
            failures.append((where, exc))
            if mirror is not spec["mirrors"][-1]:
                log(f"{name}: {where} did not work ({exc.__class__.__name__}); trying the next source")
            continue
        if _archives_used is None and not keep_archive:
            for archive in local_archives:
                archive.unlink(missing_ok=True)
        _remove_if_empty(root / DOWNLOADS_DIR)
        log(f"{name}: installed and verified in {path}")
        return path

    _remove_if_empty(root / DOWNLOADS_DIR)
    details = "\n".join(f"  - {exc}" for _where, exc in failures) or "  - no sources are listed"
    help_text = _manual_instructions(name, spec, root, checksums)
    if failures and all(isinstance(exc, NetworkError) for _w, exc in failures):
        raise NetworkError(f"could not download {name}: no source could be reached.\n{details}\n{help_text}")
    first = next(exc for _w, exc in failures if not isinstance(exc, NetworkError)) if failures else None
    cls = type(first) if first is not None else DownloadError
    raise cls(f"could not install {name}; nothing was installed.\n{details}\n{help_text}")


def download_many(
    names: Iterable[str],
    root: str | os.PathLike | None = None,
    *,
    sources=None,
    checksums=None,
    force: bool = False,
    keep_archives: bool = False,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    log: Callable[[str], None] | None = print,
) -> dict[str, Path | DownloadError]:
    """Install several sets; an archive shared by several sets is downloaded once.

    Returns ``{name: folder or the DownloadError raised for it}``.
    """
    sources = _as_sources(sources)
    checksums = _as_checksums(checksums)
    archives: set[Path] = set()
    results: dict[str, Path | DownloadError] = {}
    try:
        for name in names:
            try:
                results[name] = download(
                    name, root, sources=sources, checksums=checksums, force=force,
                    progress=progress, timeout=timeout, log=log, _archives_used=archives,
                )
            except DownloadError as exc:
                results[name] = exc
    finally:
        if not keep_archives:
            for archive in archives:
                archive.unlink(missing_ok=True)
                _remove_if_empty(archive.parent)
    return results


def install_from_archive(
    name: str,
    archive: str | os.PathLike,
    root: str | os.PathLike | None = None,
    *,
    sources=None,
    checksums=None,
    force: bool = False,
    log: Callable[[str], None] | None = print,
) -> Path:
    """Install ``name`` from an archive downloaded by hand; same checks as :func:`download`.

    The archive is never modified or deleted. Its images are looked up with the
    layouts of the known mirrors first, then in whichever single folder holds the
    expected files.
    """
    log = log or (lambda _msg: None)
    sources = _as_sources(sources)
    checksums = _as_checksums(checksums)
    name = _canonical_name(name, sources)
    spec = sources[name]
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise DownloadError(f"{archive} does not exist or is not a file")
    root = data_root(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if _existing_ok(name, spec, checksums, target, force, log):
        return target

    rules: list[dict] = []
    # A hand-made archive may hold re-encoded copies: accept images whose decoded pixels
    # match the reference when the bytes differ.
    pixel_match = True
    for mirror in spec.get("mirrors") or []:
        if mirror.get("type") == "archive":
            rules.append(mirror)
            if _archive_name(mirror) == archive.name:
                try:
                    _check_archive_checksum(archive, mirror)
                except VerificationError as exc:
                    log(f"warning: {exc} (continuing; the images are checked one by one)")
        elif mirror.get("archive_dir"):
            rule = {"member_dir": mirror["archive_dir"]}
            if mirror.get("source_ext"):
                rule["pattern"] = "*" + mirror["source_ext"]
            rules.append(rule)
    expected = expected_files(name, spec, checksums)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
    try:
        reencoded = _extract_images(name, archive, tmp, spec, rules, expected)
        verify_folder(tmp, name, spec, checksums, deep=True, reencoded=reencoded, pixel_match=pixel_match)
        _commit(tmp, target, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"{name}: installed and verified in {target}")
    return target


# --------------------------------------------------------------------------- CLI


def format_table(sources=None) -> str:
    sources = _as_sources(sources)
    rows = [("name", "images", "size", "what it is", "source")]
    for name, spec in sources.items():
        mirrors = spec.get("mirrors") or []
        url = ""
        if mirrors:
            url = mirrors[0].get("url") or mirrors[0].get("base_url", "")
            if mirrors[0].get("type") == "files":
                url += "<file>"
        rows.append(
            (name, str(spec.get("images", "?")), spec.get("size", "?"), spec.get("description", ""), url)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(r[j].ljust(widths[j]) for j in range(4)) + "  " + r[4])
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="download.py",
        description="Download, verify and install the standard super-resolution data sets "
        "as <root>/<Name>/<images>.",
    )
    p.add_argument("names", nargs="*", help="data sets to install, or 'all' (see --list)")
    p.add_argument("--list", action="store_true", help="show the available data sets and exit")
    p.add_argument("--root", help="data root (default: $SRLIB_DATA, else ./data)")
    p.add_argument(
        "--from-archive", metavar="PATH",
        help="install from an archive downloaded by hand instead of downloading",
    )
    p.add_argument("--force", action="store_true", help="replace a set that is already installed")
    p.add_argument(
        "--keep-archives", action="store_true",
        help="keep downloaded archives in <root>/.downloads after installing",
    )
    p.add_argument("--sources", metavar="JSON", help="use this data set table instead of sources.json")
    p.add_argument("--checksums", metavar="TSV", help="use this checksum table instead of checksums.tsv")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="network timeout in seconds")
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        sources = _as_sources(args.sources)
        checksums = _as_checksums(args.checksums)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot read the data set tables: {exc}", file=sys.stderr)
        return 2

    if args.list:
        print(format_table(sources))
        print(f"\ndata root: {data_root(args.root).resolve()}  (set with --root or SRLIB_DATA)")
        return 0
    if not args.names:
        _parser().print_usage(sys.stderr)
        print("error: name at least one data set, 'all', or use --list", file=sys.stderr)
        return 2

    names: list[str] = []
    for n in args.names:
        if n.lower() == "all":
            names.extend(k for k in sources if k not in names)
            continue
        try:
            canonical = _canonical_name(n, sources)
        except DownloadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if canonical not in names:
            names.append(canonical)

    failed: dict[str, DownloadError] = {}
    try:
        if args.from_archive:
            for n in names:
                try:
                    install_from_archive(
                        n, args.from_archive, args.root, sources=sources,
                        checksums=checksums, force=args.force,
                    )
                except DownloadError as exc:
                    failed[n] = exc
        else:
            results = download_many(
                names, args.root, sources=sources, checksums=checksums, force=args.force,
                keep_archives=args.keep_archives, progress=not args.no_progress,
                timeout=args.timeout,
            )
            failed = {n: r for n, r in results.items() if isinstance(r, DownloadError)}
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130

    for n, exc in failed.items():
        print(f"\nerror: {exc}", file=sys.stderr)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
