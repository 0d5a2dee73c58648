"""Local wall-clock pieces shared by the log formats (text access log, JSON lines)."""

from __future__ import annotations

import time


def utc_offset(tm: time.struct_time, separator: str = "") -> str:
    """`tm`'s offset from UTC as `+HHMM` (`+HH:MM` with separator ":")."""
    offset = tm.tm_gmtoff // 60
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset), 60)
    return f"{sign}{hours:02d}{separator}{minutes:02d}"
