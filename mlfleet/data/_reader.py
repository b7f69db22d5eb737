"""The one seam through which the sharded reader reads bytes: delta-rs's object store, with counters.

Local folders and object-store URIs alike go through delta-rs's storage handler, with the same
storage options as the results tables, so a test on a folder runs the code that reads S3. Every
range read is counted, so a test can prove what a process did and did not read.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq


class Reader:
    """The one way this module reads a file's bytes (through delta-rs's object store), counting them.

    ``bytes_read`` and ``requests`` count what was read from Parquet files, ``ranges`` says which
    ``(file, start, stop)``, ``rows_read`` the rows decoded. Storage options are delta-rs's, as for
    the results tables: those given, else ``MLFLEET_STORAGE_OPTIONS`` of this process, else none
    (delta-rs then reads ``AWS_*``, ``AZURE_*``, ``GOOGLE_*`` from the environment).
    """

    def __init__(self, storage_options: dict[str, str] | None = None) -> None:
        from mlfleet.stores.delta import storage_options as resolve

        self.storage_options = resolve(storage_options)
        self.bytes_read = 0
        self.requests = 0
        self.rows_read = 0
        self.ranges: list[tuple[str, int, int]] = []
        self._handlers: dict[str, object] = {}

    def _handler(self, root: str):
        if root not in self._handlers:
            from deltalake.fs import DeltaStorageHandler

            self._handlers[root] = DeltaStorageHandler(root, self.storage_options)
        return self._handlers[root]

    def list_files(self, root: str, names: Sequence[str] = ()) -> list[tuple[str, int]]:
        """``(path, bytes)`` of the files ``names`` under ``root``, or of every file below it; metadata only."""
        from pyarrow.fs import FileSelector, FileType

        handler = self._handler(root)
        infos = handler.get_file_info(list(names)) if names else handler.get_file_info_selector(FileSelector("", True))
        return [(info.path, info.size) for info in infos if info.type == FileType.File]

    def open(self, root: str, path: str) -> _Counted:
        return _Counted(self._handler(root).open_input_file(path), self, path)

    def footer(self, root: str, path: str) -> pq.FileMetaData:
        """A Parquet file's footer, reading exactly its last ``8 + footer length`` bytes."""
        with self.open(root, path) as f:
            size = f.size
            if size < 12:
                raise ValueError("too small to be a Parquet file")
            f.seek(size - 8)
            tail = f.read(8)
            if tail[4:] != b"PAR1":
                raise ValueError(
                    "not a Parquet file (no PAR1 at its end)" + (", encrypted" if tail[4:] == b"PARE" else "")
                )
            length = struct.unpack("<i", tail[:4])[0]
            f.seek(size - 8 - length)
            footer = f.read(length)
        # A file of the magic and the footer alone: what the footer says is parsed, nothing else is read.
        return pq.read_metadata(pa.BufferReader(b"PAR1" + footer + tail))


class _Counted(io.RawIOBase):
    """A readable, seekable file that tells its :class:`Reader` every range it reads."""

    def __init__(self, inner, reader: Reader, path: str) -> None:
        self._inner, self._reader, self._path = inner, reader, path
        self.size = inner.size()
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset + (0, self._pos, self.size)[whence]
        return self._pos

    def read(self, n: int = -1) -> bytes:
        n = self.size - self._pos if n is None or n < 0 else min(n, self.size - self._pos)
        if n <= 0:
            return b""
        self._inner.seek(self._pos)
        data = self._inner.read(n)
        start, self._pos = self._pos, self._pos + len(data)
        self._reader.bytes_read += len(data)
        self._reader.requests += 1
        self._reader.ranges.append((self._path, start, self._pos))
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()
