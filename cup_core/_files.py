"""Reading a user's files safely: regular files only, and never more than a stated number of bytes.

A FIFO blocks a reader forever, /dev/zero never ends, and a symlink can point anywhere: every file a user
names (a checkpoint, an index list, a sweep file, a data set's files) is opened here, checked to be a
regular file on the open descriptor itself (so that nothing is swapped in between a check and the read),
and read within a bound.
"""

from __future__ import annotations

import hashlib
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

MiB = 1 << 20
GiB = 1 << 30


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


@contextmanager
def open_regular(path: str | os.PathLike, what: str, max_bytes: int | None = None) -> Iterator[BinaryIO]:
    """`path` opened for reading in binary, after checking that it is a regular file of at most `max_bytes`;
    ValueError names the file and what is wrong (missing, a FIFO, a device, a folder, a symlink loop, too big)."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise ValueError(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ValueError(f"{path}: the {what} is {_kind(status.st_mode)}, not a regular file; give a file")
        if max_bytes is not None and status.st_size > max_bytes:
            raise ValueError(f"{path}: the {what} is {status.st_size:,} bytes, more than the {max_bytes:,} a "
                             f"{what} may have")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        file = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with file:
        yield file


def read_regular(path: str | os.PathLike, what: str, max_bytes: int) -> bytes:
    """The whole content of a regular file of at most `max_bytes` (checked on the size and on the read)."""
    with open_regular(path, what, max_bytes) as file:
        try:
            data = file.read(max_bytes + 1)
        except OSError as err:
            raise ValueError(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    if len(data) > max_bytes:  # a file that grew while being read
        raise ValueError(f"{path}: the {what} is more than the {max_bytes:,} bytes a {what} may have")
    return data


def check_regular(path: str | os.PathLike, what: str, max_bytes: int | None = None) -> Path:
    """`path`, after checking it as `open_regular` does (for readers that open the file themselves)."""
    with open_regular(path, what, max_bytes):
        pass
    return Path(path)


_HASHES: dict[tuple[str, int, int, int], str] = {}  # (path, size, mtime_ns, inode) -> SHA-256


def sha256_regular(path: str | os.PathLike, what: str, max_bytes: int | None = None,
                   on_block: Callable[[], None] | None = None) -> str:
    """A regular file's SHA-256 (opened as `open_regular` does), remembered by path, size, mtime and inode, so a
    file is hashed once per process while it stays the same; `on_block` runs before each MiB is read (a limit)."""
    with open_regular(path, what, max_bytes) as file:
        status = os.fstat(file.fileno())
        key = (str(path), status.st_size, status.st_mtime_ns, status.st_ino)
        if key not in _HASHES:
            digest = hashlib.sha256()
            try:
                for block in iter(lambda: file.read(MiB), b""):
                    if on_block is not None:
                        on_block()
                    digest.update(block)
            except OSError as err:
                raise ValueError(f"{path}: cannot read the {what} ({err.strerror or err})") from None
            _HASHES[key] = digest.hexdigest()
    return _HASHES[key]
