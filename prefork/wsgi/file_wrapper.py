"""`wsgi.file_wrapper`: lets the server send a real file with sendfile(2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any


class FileWrapper:
    def __init__(self, filelike: IO[bytes], blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        close = getattr(filelike, "close", None)
        if close is not None:
            self.close = close

    def fileno(self) -> int | None:
        """The descriptor to sendfile from, or None if this is not a plain file."""
        try:
            fd: Any = self.filelike.fileno()
        except (AttributeError, OSError, ValueError):
            return None
        return fd if isinstance(fd, int) else None

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data
