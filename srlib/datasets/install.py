"""Verifying a set's images, and installing a set: filled in a temporary folder, verified, and only
then renamed into place, under the data root (:func:`srlib.files.data_root`)."""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import math
import os
import posixpath
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Callable, Iterable, Mapping

from ..files import data_root
from . import DownloadError, NetworkError, VerificationError
from .archives import IMAGE_EXTS, _extract_images, _store
from .fetch import DEFAULT_TIMEOUT, _retrieve
from .tables import (
    _archive_name,
    _check_names,
    _download_limit,
    _image_limit,
    _known_hash,
    _resolve,
    _short_list,
    expected_files,
    load_checksums,
    load_sources,
)

DOWNLOADS_DIR = ".downloads"


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
