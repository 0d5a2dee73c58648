"""Wall-clock text that ignores the process locale: English names, UTC offsets.

strftime's %a and %b follow the locale, which the application may change;
HTTP dates (http/response.py) and log timestamps (observe/) want English.
A leaf module, so the protocol layer and the logs share it without either
importing the other.
"""

from __future__ import annotations

import time
from typing import Final

DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def utc_offset(tm: time.struct_time, separator: str = "") -> str:
    """`tm`'s offset from UTC as `+HHMM` (`+HH:MM` with separator ":")."""
    offset = tm.tm_gmtoff // 60
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset), 60)
    return f"{sign}{hours:02d}{separator}{minutes:02d}"
