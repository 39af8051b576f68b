"""The mapped header of the WAL index of an SQLite file (``<path>-shm``), which
:class:`~actionkit.stores.SQLiteStore` reads to tell, without a lock or a system call, whether
another connection has written (see :mod:`actionkit.stores.sqlite`)."""

from __future__ import annotations

import mmap
import os
import threading
import typing as t

# The WAL index header in <path>-shm: two copies of 48 bytes (the first written last at each
# commit, with a change counter), then the checkpoint information.
_WAL_HEADER = 48
_WAL_INDEX_MIN = 136


class _WalIndexMaps:
    """Read-only maps of WAL index headers, one per ``-shm`` file and process, shared by the
    stores of the process that use the file.

    A map's descriptor is closed only when no store of the process uses the file any more:
    closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
    included, and with its locks gone another process may truncate the file (a read of the map
    would then kill this one with SIGBUS) or checkpoint over pages a reader here is reading.
    (Connections to the file opened outside the stores are not counted.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._maps: dict[tuple[int, int, int], list[t.Any]] = {}  # (pid, dev, ino): [map, fd, n]
        self._unusable: list[int] = []  # descriptors that could not be mapped, never closed

    def acquire(self, path: str) -> tuple[tuple[int, int, int], mmap.mmap] | None:
        """Map the header of the WAL index at ``path``, or ``None`` where there is none to map.

        Called while SQLite holds locks on the file, so a descriptor opened here is never closed
        before :meth:`release`; the file is looked up by its inode before opening it.
        """
        with self._lock:
            try:
                stat = os.stat(path)
            except OSError:
                return None
            key = (os.getpid(), stat.st_dev, stat.st_ino)
            held = self._maps.get(key)
            if held is not None:
                held[2] += 1
                return key, held[0]
            if stat.st_size < _WAL_INDEX_MIN:
                return None
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                return None
            try:
                shm = mmap.mmap(fd, _WAL_INDEX_MIN, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                self._unusable.append(fd)
                return None
            self._maps[key] = [shm, fd, 1]
            return key, shm

    def release(self, key: tuple[int, int, int]) -> None:
        """Called by a store once its connections are closed."""
        with self._lock:
            held = self._maps.get(key)
            if held is None or key[0] != os.getpid():
                return
            held[2] -= 1
            if held[2] == 0:
                del self._maps[key]
                held[0].close()
                os.close(held[1])


_wal_index_maps = _WalIndexMaps()
