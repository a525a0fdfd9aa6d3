"""The command line of ``python -m srlib download`` and ``data_scripts/download.py``."""
from __future__ import annotations

import argparse
import sys

from ..files import data_root
from ..table import table
from . import DownloadError
from .fetch import DEFAULT_TIMEOUT
from .install import DOWNLOADS_DIR, _check_timeout, download, install_from_archive
from .tables import _resolve, load_checksums, load_sources

DESCRIPTION = "Download, verify and install the standard super-resolution data sets as <root>/<Name>/<images>."


def format_table(sources=None) -> str:
    """The ``--list`` table: name, number of images, size, description, first source."""
    rows = []
    for name, spec in load_sources(sources).items():
        first = (spec.get("mirrors") or [{}])[0]
        url = first.get("url") or first.get("base_url", "") + ("<file>" if first.get("type") == "files" else "")
        rows.append((name, spec.get("images", "?"), spec.get("size", "?"), spec.get("description", ""), url))
    return table(["name", "images", "size", "what it is", "source"], rows)


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
