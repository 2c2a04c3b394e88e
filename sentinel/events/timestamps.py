"""Timestamp parsing: syslog's year-less stamps with year inference, ISO 8601, epochs."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}

# Events further in the future than this are treated as carrying an impossible time.
FUTURE_TOLERANCE = 86400.0
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC).timestamp()


@lru_cache(maxsize=4096)
def _hour_start(zone: str, year: int, month: int, day: int, hour: int) -> float:
    return datetime(year, month, day, hour, tzinfo=ZoneInfo(zone)).timestamp()


@lru_cache(maxsize=64)
def _year_of(zone: str, reference_hour: int) -> int:
    return datetime.fromtimestamp(reference_hour * 3600, ZoneInfo(zone)).year


def bsd_timestamp(month: str, day: int, hour: int, minute: int, second: float, zone: str, reference: float) -> float:
    """Epoch of an RFC 3164 stamp (no year, no zone): the year that puts it nearest before ``reference``.

    A December line read in January belongs to the previous year; a line at most a day ahead of
    the reference (clock skew) stays in the reference's year.
    """
    mon = MONTHS[month]
    year = _year_of(zone, int(reference // 3600))
    ts = _hour_start(zone, year, mon, day, hour) + minute * 60 + second
    if ts > reference + FUTURE_TOLERANCE:
        ts = _hour_start(zone, year - 1, mon, day, hour) + minute * 60 + second
    elif ts < reference - 330 * 86400:
        # A January line read in December of the year before (reference lags, e.g. replay).
        candidate = _hour_start(zone, year + 1, mon, day, hour) + minute * 60 + second
        if candidate <= reference + FUTURE_TOLERANCE:
            ts = candidate
    return ts


# A year-less stamp that bsd_timestamp places this far before the reference might as well be a stamp up to a
# month in the future (a wrong clock, or a forged line) read as last year: the two cannot be told apart.
DOUBTFUL_YEAR_FROM = 334 * 86400.0
DOUBTFUL_YEAR_TO = 366 * 86400.0


def year_doubtful(ts: float, reference: float) -> bool:
    """Whether a year-inferred stamp is 11-12 months old, i.e. equally a stamp days to weeks ahead."""
    return reference - DOUBTFUL_YEAR_TO < ts <= reference - DOUBTFUL_YEAR_FROM


@lru_cache(maxsize=8192)
def _iso_cached(text: str, zone: str) -> float:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        # Here, not at import: only a stamp fromisoformat refuses needs dateutil, and every process decoding
        # anything (the CLI, each decode worker) would otherwise pay for importing it.
        from dateutil import parser as dateparser

        dt = dateparser.isoparse(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(zone))
    return dt.timestamp()


def iso_timestamp(text: str, zone: str = "UTC") -> float:
    """Epoch of an ISO 8601 / RFC 3339 stamp; zone-less stamps are read in ``zone``. ValueError if bad."""
    text = text.strip()
    if len(text) > 40:
        raise ValueError(f"not a timestamp: {text[:40]!r}")
    # fromisoformat accepts at most 6 fractional digits on 3.11; Windows emits 7.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = 0
        while digits < len(rest) and rest[digits].isdigit():
            digits += 1
        if digits > 6:
            text = f"{head}.{rest[:6]}{rest[digits:]}"
    return _iso_cached(text, zone)


def any_timestamp(value: object, zone: str = "UTC") -> float:
    """Epoch from an ISO string, an epoch number (s or ms) or a free-form date; ValueError if none."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        number = float(value)
        return number / 1000.0 if number > 1e11 else number
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return any_timestamp(float(text))
        try:
            return iso_timestamp(text, zone)
        except (ValueError, OverflowError):
            from dateutil import parser as dateparser

            try:
                dt = dateparser.parse(text)
            except (ValueError, OverflowError) as exc:
                raise ValueError(f"unparsable timestamp {text[:40]!r}") from exc
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=ZoneInfo(zone))
            return dt.timestamp()
    raise ValueError(f"unparsable timestamp {value!r}")


def plausible(ts: float, now: float) -> bool:
    """Whether an event time can be true: not before 1990 and not more than a day in the future."""
    return EARLIEST <= ts <= now + FUTURE_TOLERANCE

