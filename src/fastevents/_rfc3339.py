"""RFC 3339 timestamps, strictly as the Go package writes and reads them.

Hand-written rather than left to ``datetime.isoformat``/``fromisoformat``, which do
not match the wire:

* strict RFC 3339 only, ``YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|+HH:MM)``, the layout of
  Go's ``time.RFC3339Nano`` (fraction with trailing zeros trimmed, ``Z`` for UTC);
  ``fromisoformat`` is lenient about other shapes and ``isoformat`` writes others;
* Go keeps nanoseconds, a datetime microseconds: extra fraction digits are truncated,
  never rounded (rounding up could move an event into the next second);
* fast, being on the path of every streamed token: formatting caches the text of each
  second; parsing caches the date-times and offsets already validated, so that known
  shapes go straight to the C ``datetime.fromisoformat``.  The hot paths of
  `fastevents._wire` import these caches (and ``_tail_heads``, its envelope shape
  check, filled here) and use them directly rather than calling through this module.

Parsing raises ``ValueError`` (``TypeError`` for a non-string); `fastevents._wire`
turns failures into `InvalidEvent`.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta, timezone, tzinfo

from ._errors import InvalidEvent

__all__ = ["format_rfc3339", "parse_rfc3339"]

#: A timestamp as an event stores it: integer microseconds since the Unix epoch (UTC;
#: what "now" events hold) or an aware datetime.
RawTimestamp = int | datetime

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Go's zero ``time.Time``: the Go package's ``Validate`` refuses it ("timestamp cannot be
#: zero"), so an event carrying it is invalid here too.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_NO_TIME = timedelta(0)


def is_zero_time(dt: datetime) -> bool:
    """True when aware `dt` is the instant of Go's zero time, whatever its offset.

    Callers test ``dt.year == 1`` first (every spelling of that instant is in year 1),
    so that the subtraction only runs for such dates.  A sub-microsecond Go time just
    after zero is zero here: a datetime cannot tell the two apart.
    """
    return dt - ZERO_TIME == _NO_TIME


# --------------------------------------------------------------------------- writing

# Epoch second -> its "YYYY-MM-DDTHH:MM:SS".  Tokens stream many events a second and
# the calendar arithmetic is the slow part, so each second is formatted once.  A dict
# rather than a single "last second" slot, so that events of several clocks (replays,
# other offsets) do not evict each other; bounded by clearing when full.  Every read
# and write is a single dict operation, so threads never see a torn entry.
_seconds_text: dict[int, str] = {}
_SECONDS_CACHE_MAX = 1024
#: UTC offset -> its RFC 3339 text ("+05:30"); offsets with seconds map to "".
_offset_text: dict[timedelta, str] = {}
_OFFSET_CACHE_MAX = 4096


def _second_text(seconds: int) -> str:
    try:
        dt = EPOCH + timedelta(seconds=seconds)
    except OverflowError as exc:  # only reachable by an offset pushing past year 1/9999
        raise InvalidEvent("timestamp out of range") from exc
    text = dt.isoformat()[:19]  # "YYYY-MM-DDTHH:MM:SS+00:00": the year is zero-padded
    if len(_seconds_text) >= _SECONDS_CACHE_MAX:
        _seconds_text.clear()
    _seconds_text[seconds] = text
    return text


def _zone_text(offset: timedelta) -> str:
    minutes, rest = divmod(offset, timedelta(minutes=1))
    if rest:
        text = ""  # seconds in the offset: RFC 3339 cannot say it, so we write UTC
    else:
        sign = "-" if minutes < 0 else "+"
        hours, mins = divmod(abs(minutes), 60)
        text = f"{sign}{hours:02d}:{mins:02d}"
    if len(_offset_text) >= _OFFSET_CACHE_MAX:  # only odd tzinfos make many offsets
        _offset_text.clear()
    _offset_text[offset] = text
    return text


def _wall_micros(dt: datetime) -> tuple[int, str]:
    """(microseconds since the epoch of `dt`'s own wall clock, zone text)."""
    tz = dt.tzinfo
    offset = None if tz is UTC else dt.utcoffset()
    if offset is None and tz is not UTC:
        dt = dt.replace(tzinfo=UTC)  # naive: taken as UTC
    # Subtracting aware datetimes is C and much cheaper than isoformat(), which
    # calls back into the tzinfo; it yields the instant, which we shift by the offset.
    micros: int = (dt - EPOCH) // _ONE_MICROSECOND
    if not offset:
        return micros, "Z"
    try:
        zone = _offset_text[offset]
    except KeyError:
        zone = _zone_text(offset)
    if not zone:
        return micros, "Z"
    return micros + offset // _ONE_MICROSECOND, zone


def format_rfc3339(ts: RawTimestamp) -> str:
    """Format like Go's ``time.RFC3339Nano``: trailing zeros of the fraction trimmed
    (no fraction when zero), ``Z`` for UTC, else the datetime's own ``+HH:MM``."""
    if type(ts) is int:
        micros, zone = ts, "Z"
    elif ts.tzinfo is UTC:  # type: ignore[union-attr]
        micros, zone = (ts - EPOCH) // _ONE_MICROSECOND, "Z"  # type: ignore[operator]
    else:
        micros, zone = _wall_micros(ts)  # type: ignore[arg-type]
    seconds = micros // 1_000_000
    micros %= 1_000_000
    try:
        prefix = _seconds_text[seconds]
    except KeyError:
        prefix = _second_text(seconds)
    if micros:
        # %-formatting: measurably faster than an f-string with a spec on 3.11.
        return prefix + ("%06d" % micros).rstrip("0").join((".", zone))  # noqa: UP031
    return prefix + zone


# --------------------------------------------------------------------------- reading

_PREFIX_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)", re.ASCII)
_TAIL_RE = re.compile(r"(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))", re.ASCII)

#: Validated "YYYY-MM-DDTHH:MM:SS" -> (year, month, day, hour, minute, second).
#: Bounded by clearing when full (a stream's timestamps share a few seconds at a time).
_prefixes: dict[str, tuple[int, int, int, int, int, int]] = {}
_PREFIX_CACHE_MAX = 4096
#: ',"timestamp":"' + the same date-times + one of ".Z+-" -> that character: the
#: read fast path's shape check (see _wire.event_from_json).
_tail_heads: dict[str, str] = {}
#: Every "+HH:MM" text _zone accepted (the fast path's check of an offset).
_zone_texts: dict[str, None] = {"+00:00": None, "-00:00": None}
#: (sign, "HH", "MM") -> tzinfo; the zero offset maps to the `UTC` singleton.
_zones: dict[tuple[str, str, str], tzinfo] = {("+", "00", "00"): UTC, ("-", "00", "00"): UTC}
#: "" and every string of 1..3 ASCII digits.
_DIGITS = frozenset([""] + [f"{i:0{w}d}" for w in (1, 2, 3) for i in range(10**w)])
#: Multiplier turning a fraction of n digits (n <= 6) into microseconds.
_SCALE = (0, 100_000, 10_000, 1_000, 100, 10, 1)

# datetime.fromisoformat reads "Z" and truncates extra fraction digits from 3.11 on;
# it is lenient about other shapes (",5", ".Z", "+0200", "+02:60"), hence the checks
# in front of it.  Before 3.11 every timestamp takes the strict path.
_fromisoformat = datetime.fromisoformat if sys.version_info >= (3, 11) else None


def _prefix(s: str) -> tuple[int, int, int, int, int, int]:
    m = _PREFIX_RE.match(s)
    if m is None:
        raise ValueError("not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS...)")
    year, month, day, hour, minute, second = map(int, m.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("time of day out of range")
    datetime(year, month, day)  # checks month and day (Feb 29 too) and rejects year 0
    if len(_prefixes) >= _PREFIX_CACHE_MAX:
        _prefixes.clear()
        _tail_heads.clear()
    head = s[:19]
    parts = _prefixes[head] = (year, month, day, hour, minute, second)
    if year != 1:
        # Year 1 holds Go's zero time, which the general path refuses; the fast path
        # of event_from_json does not check for it, so it never sees that year.
        for kind in ".Z+-":
            _tail_heads[',"timestamp":"' + head + kind] = kind
    return parts


def _zone(sign: str, hours: str, minutes: str) -> tzinfo:
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError("UTC offset out of range")
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    tz = timezone(-offset if sign == "-" else offset)
    _zones[sign, hours, minutes] = tz  # at most 2 * 24 * 60 entries, never evicted
    _zone_texts[f"{sign}{hours}:{minutes}"] = None
    return tz


def parse_strict(s: str) -> datetime:
    """The reference RFC 3339 parser: ``YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|+HH:MM)``.

    Fractional digits beyond microseconds are truncated, never rounded (Go keeps
    nanoseconds; rounding up could move an event into the next second).
    """
    try:
        parts = _prefixes[s[:19]]
    except KeyError:
        parts = _prefix(s)
    m = _TAIL_RE.fullmatch(s, 19)
    if m is None:
        raise ValueError("malformed fractional seconds or UTC offset (Z or +HH:MM)")
    frac, z, sign, hours, minutes = m.groups()
    micros = int(frac[:6]) * _SCALE[min(len(frac), 6)] if frac else 0
    if z:
        tz: tzinfo = UTC
    else:
        tz = _zones.get((sign, hours, minutes)) or _zone(sign, hours, minutes)
    return datetime(*parts, micros, tz)


def parse_rfc3339(s: str) -> datetime:
    """Parse a strict RFC 3339 timestamp into an aware datetime.

    Raises ``ValueError`` with the reason, or ``TypeError`` for a non-string.
    """
    if type(s) is not str:
        if not isinstance(s, str):
            raise TypeError(f"timestamp must be a str, not {type(s).__name__}")
        s = str.__str__(s)
    # The fast path, for UTC: the same checks as in _wire.event_from_json (see there).
    n = len(s)
    if (
        _fromisoformat is not None
        and s[:19] in _prefixes
        and s[-1] == "Z"
        and (n == 20 or (21 < n < 31 and s[19] == "." and s[26:-1] in _DIGITS))
    ):
        try:
            return _fromisoformat(s)
        except ValueError:
            pass
    return parse_strict(s)
