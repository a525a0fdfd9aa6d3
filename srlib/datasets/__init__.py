"""The standard super-resolution data sets: their sources, download, checks and install.

    python -m srlib download --list
    python -m srlib download Set5 T91 --root ./data
    python -m srlib download Urban100 --from-archive ~/Downloads/Urban100_HR.tar.gz

Every set is installed flat as ``<root>/<Name>/<image files>``, which is what
:func:`srlib.data.load_set` reads; ``<root>`` is :func:`srlib.data.data_root`. The table of sets
(``data_sources/sources.json``: mirrors tried in order, archive layouts, renames, archive
checksums) and the per-image checksums (``data_sources/checksums.tsv``) ship with the package.
Files are fetched with pooch (an interrupted archive download resumes, see
:class:`fetch._ResumingDownloader`); every archive member is checked before anything is written;
images are extracted flat into a temporary folder inside ``<root>``, verified, and only then
renamed to ``<root>/<Name>``. Whatever fails is removed (a bad archive included), so a set is
either complete or absent. Sizes are capped: a download stops once it is larger than expected
(:func:`tables._download_limit`, :func:`tables._image_limit`), and extraction stops at a per-image
and a total limit, so a wrong link or a zip bomb cannot fill the disk. A server that stops sending,
or sends so slowly that less than :data:`fetch.STALL_BYTES` arrive in a whole ``timeout``, is given
up (the part received is kept, and the same command resumes it).

One submodule per step, each importing only from the ones before it:

* ``tables``: the two tables, the checks on the names they give, the size limits they imply;
* ``fetch``: pooch, with a downloader that resumes, gives up on a stalled server and caps the size;
* ``archives``: reading zip and tar archives, checking their members, extracting the images;
* ``install``: verification, and installing a set (:func:`download`, :func:`install_from_archive`);
* ``cli``: the options and the ``--list`` table of ``python -m srlib download``.

The errors are defined here, ahead of the submodules that raise them.
"""
from __future__ import annotations

__all__ = ["DownloadError", "NetworkError", "VerificationError", "UnsafeArchiveError", "UnsafeSourceError",
           "CorruptArchiveError", "SETS", "load_sources", "load_checksums", "expected_files",
           "download", "install_from_archive", "verify", "verify_folder", "pixel_sha256", "format_table",
           "add_arguments", "run", "main"]


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


from .cli import add_arguments, format_table, main, run  # noqa: E402
from .install import download, install_from_archive, pixel_sha256, verify, verify_folder  # noqa: E402
from .tables import SETS, expected_files, load_checksums, load_sources  # noqa: E402
