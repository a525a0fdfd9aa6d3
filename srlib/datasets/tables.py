"""The data set table and the per-image checksums shipped in ``srlib/data_sources``, the checks on
the names they give, and the size limits they imply."""
from __future__ import annotations

import csv
import errno
import json
import os
import posixpath
import re
import urllib.parse
from pathlib import Path
from typing import Iterable, Mapping

from . import DownloadError, UnsafeSourceError

TABLES = Path(__file__).parent.parent / "data_sources"
MB = 1 << 20
MAX_IMAGE_BYTES = 200 * MB  # one image file whose size is not known (DIV2K's largest PNG is about 6 MB)
MAX_DOWNLOAD_BYTES = 8 << 30  # an archive whose size the table does not give


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
