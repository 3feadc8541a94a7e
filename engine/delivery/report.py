"""A vendor's per-item report, read: JSON, CSV, or an archive of JSON files.

Vendors hand back per-item results in three shapes, told apart by what the answer is:

- **an archive** (a tar file, gzipped or not, recognised by its first bytes whatever its
  content type: a storage bucket often says ``binary/octet-stream``): its regular files are
  parsed as JSON, in archive order, into one list (a file that holds a list adds its items);
  a gzipped single file that is not a tar is read as the one document it holds;
- **CSV** (by its content type): its rows, as mappings keyed by the header row;
- **JSON**: the document.

An archive is opened in memory: nothing is written to disk, so names (``../``, absolute
paths, links) lead nowhere; links, directories and devices are skipped. Its size is bounded
before anything is parsed; each bound, when passed, fails the report with its name:
``ARCHIVE_MAX_BYTES`` (the download, and everything it decompresses to),
``ARCHIVE_MAX_MEMBERS`` (files), ``ARCHIVE_MAX_MEMBER_BYTES`` (one file).
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
import zlib
from typing import Any

from ..errors import RelayError
from .retry import parse_body

__all__ = [
    "ARCHIVE_MAX_BYTES",
    "ARCHIVE_MAX_MEMBERS",
    "ARCHIVE_MAX_MEMBER_BYTES",
    "ReportError",
    "is_archive",
    "read_report",
]

#: At most this many bytes downloaded, and at most this many once decompressed.
ARCHIVE_MAX_BYTES = 64 * 1024 * 1024
#: At most this many files in an archive.
ARCHIVE_MAX_MEMBERS = 10_000
#: At most this many bytes in one file of an archive.
ARCHIVE_MAX_MEMBER_BYTES = 16 * 1024 * 1024

_GZIP = b"\x1f\x8b"
_TAR_MAGIC_AT = 257  # "ustar" in a POSIX or GNU tar header


class ReportError(RelayError):
    """The report cannot be read (malformed, or over a named limit)."""


def is_archive(content: bytes) -> bool:
    """Whether ``content`` is a gzip stream or a tar file (by its first bytes)."""
    return content.startswith(_GZIP) or _is_tar(content)


def read_report(content: bytes, content_type: str) -> Any:
    """The report's data: an archive's files as one list, a CSV's rows, or the JSON document."""
    if is_archive(content):
        return _archive(content)
    if "csv" in content_type.lower():
        text = content.decode("utf-8-sig", "replace")
        return [dict(row) for row in csv.DictReader(io.StringIO(text))]
    return parse_body(content, content_type)


def _is_tar(content: bytes) -> bool:
    return content[_TAR_MAGIC_AT : _TAR_MAGIC_AT + 5] == b"ustar"


def _archive(content: bytes) -> Any:
    if len(content) > ARCHIVE_MAX_BYTES:
        raise ReportError(
            f"the report archive is {len(content):,} bytes, over ARCHIVE_MAX_BYTES ({ARCHIVE_MAX_BYTES:,})"
        )
    data = _gunzip(content) if content.startswith(_GZIP) else content
    if not _is_tar(data):
        return _json(data, "the report")
    found: list[Any] = []
    members = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                if not member.isfile():
                    continue  # directories, links, devices: nothing to read, nothing written
                members += 1
                if members > ARCHIVE_MAX_MEMBERS:
                    raise ReportError(
                        f"the report archive holds over ARCHIVE_MAX_MEMBERS ({ARCHIVE_MAX_MEMBERS:,}) files"
                    )
                if member.size > ARCHIVE_MAX_MEMBER_BYTES:
                    raise ReportError(
                        f"{member.name!r} in the report archive is {member.size:,} bytes, over"
                        f" ARCHIVE_MAX_MEMBER_BYTES ({ARCHIVE_MAX_MEMBER_BYTES:,})"
                    )
                handle = archive.extractfile(member)
                value = _json(handle.read() if handle is not None else b"", repr(member.name))
                found.extend(value if isinstance(value, list) else [value])
    except tarfile.TarError as exc:
        raise ReportError(f"the report archive cannot be read: {exc}") from None
    return found


def _gunzip(content: bytes) -> bytes:
    """Every gzip member of ``content``, decompressed, never more than ARCHIVE_MAX_BYTES."""
    out = bytearray()
    rest = content
    while rest:
        stream = zlib.decompressobj(wbits=31)
        try:
            out += stream.decompress(rest, ARCHIVE_MAX_BYTES + 1 - len(out))
        except zlib.error as exc:
            raise ReportError(f"the report archive is not valid gzip: {exc}") from None
        if len(out) > ARCHIVE_MAX_BYTES or stream.unconsumed_tail:
            raise ReportError(f"the report archive decompresses to over ARCHIVE_MAX_BYTES ({ARCHIVE_MAX_BYTES:,})")
        if not stream.eof:
            raise ReportError("the report archive is cut short (its gzip stream does not end)")
        rest = stream.unused_data.lstrip(b"\0")  # some writers pad after the last member
    return bytes(out)


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReportError(f"{what} is not JSON: {exc}") from None
