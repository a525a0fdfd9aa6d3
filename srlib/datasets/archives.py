"""Zip and tar archives: every member checked before anything is written, then the images of a set
extracted flat, under sizes that are capped."""
from __future__ import annotations

import contextlib
import fnmatch
import functools
import os
import posixpath
import re
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Mapping

from . import CorruptArchiveError, DownloadError, UnsafeArchiveError, VerificationError
from .fetch import CHUNK_SIZE
from .tables import _image_limit, _is_plain_name, _short_list

IMAGE_EXTS = (".png", ".bmp", ".jpg", ".jpeg")
MAX_EXTRACTED_BYTES = 8 << 30  # everything extracted for one set (DIV2K's 800 training images: 3.5 GB)
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
