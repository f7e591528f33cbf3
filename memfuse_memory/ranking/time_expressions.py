"""Resolve the date and time expressions of a query against a reference time, without I/O.

``resolve(text, reference)`` turns "last Saturday", "two days ago", "in May 2023", "on March 3rd",
"2023/05/20" into a time window with a confidence, and "first", "earliest", "most recent",
"latest", "before/after I ..." into an ordering preference. Relative words are matched by
regular expressions; the absolute dates they find are read by python-dateutil (imported only
when the text holds a month name or a numeric date).
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Order = Literal["earliest", "latest"]

_DAY = timedelta(days=1)
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]  # fmt: skip
_MONTH_RE = "|".join(m[:3] + (m[3:] and f"(?:{m[3:]})?") for m in _MONTHS)
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "couple": 2, "a couple": 2,
    "a couple of": 2, "few": 3, "a few": 3, "several": 4,
}  # fmt: skip
_COUNT = (
    r"(\d{1,3}|a couple(?: of)?|a few|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|few|several)"
)
_UNITS = {"day": 1, "week": 7, "month": 30, "year": 365}

_AGO = re.compile(rf"\b{_COUNT}\s+(day|week|month|year)s?\s+ago\b", re.I)
_PAST = re.compile(rf"\b(?:in\s+)?the\s+(?:last|past)\s+(?:{_COUNT}\s+)?(day|week|month|year)s?\b", re.I)
_LAST_UNIT = re.compile(r"\b(last|this|previous)\s+(week|month|year|weekend)\b", re.I)
_WEEKDAY = re.compile(rf"\b(last|this|past|on)?\s*({'|'.join(_WEEKDAYS)})\b", re.I)
_DAY_WORD = re.compile(r"\b(yesterday|today|tonight|this morning|this afternoon|this evening)\b", re.I)
_NUMERIC_DATE = re.compile(r"\b(\d{4})[/-](\d{1,2})[/-](\d{1,2})\b|\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_MONTH_DAY = re.compile(
    rf"\b(?:({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?"
    rf"|(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RE})\.?(?:,?\s+(\d{{4}}))?)\b",
    re.I,
)
_MONTH_ONLY = re.compile(
    rf"\b(?:(?:in|during|since|of|early|late|mid)\s+({_MONTH_RE})(?:,?\s+(\d{{4}}))?|({_MONTH_RE})\s+(\d{{4}}))\b",
    re.I,
)
_YEAR = re.compile(r"\b(?:in|during|of)\s+((?:19|20)\d{2})\b", re.I)
_EARLIEST = re.compile(
    r"\b(first|earliest|initially|originally|at the (?:beginning|start)|which (?:came|happened) first)\b", re.I
)
_LATEST = re.compile(r"\b(most recent(?:ly)?|latest|last time|recently|currently|newest|lately)\b", re.I)
_CHOICE = re.compile(r"\b(first|earliest|latest|most recent(?:ly)?)\b.*\bor\b", re.I | re.S)
_BEFORE_AFTER = re.compile(r"\b(before|after)\s+(?:i|we|my)\b", re.I)
_HINT_WORDS = re.compile(
    rf"\b(ago|yesterday|today|tonight|last|past|this|previous|first|earliest|latest|recent(?:ly)?|lately|before|after|"
    rf"initially|originally|currently|newest|{'|'.join(_WEEKDAYS)}|{_MONTH_RE}|(?:19|20)\d{{2}})\b|\d{{1,2}}/\d{{1,2}}/",
    re.I,
)


@dataclass(frozen=True)
class TimeHint:
    """What the text says about when: a window [start, end) with a confidence, and/or an order."""

    start: datetime | None = None
    end: datetime | None = None
    confidence: float = 0.0
    order: Order | None = None
    order_confidence: float = 0.0

    @property
    def empty(self) -> bool:
        return self.start is None and self.order is None


def mentions_time(text: str) -> bool:
    """Cheap test: could the text hold a time expression (so the reference time matters)?"""
    return _HINT_WORDS.search(text) is not None


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _count(word: str | None) -> int:
    if not word:
        return 1
    word = word.lower()
    return int(word) if word.isdigit() else _NUMBERS.get(word, 1)


def _month_window(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    return start, start + timedelta(days=monthrange(year, month)[1])


def _month_index(name: str) -> int:
    return next(i for i, m in enumerate(_MONTHS, start=1) if m.startswith(name.lower()[:3]))


def _absolute(text: str, ref: datetime) -> tuple[datetime, datetime, float] | None:
    """A date named in the text; a year left out is the latest one not after the reference."""
    numeric = _NUMERIC_DATE.search(text)
    if numeric:
        from dateutil import parser  # lazy: only texts with a date pay for it

        try:
            when = parser.parse(numeric.group(0), yearfirst=numeric.group(1) is not None, dayfirst=False)
        except (ValueError, OverflowError):
            return None
        start = datetime(when.year, when.month, when.day, tzinfo=UTC)
        return start, start + _DAY, 0.9
    day_match, month_match = _MONTH_DAY.search(text), _MONTH_ONLY.search(text)
    if day_match or month_match:
        g = day_match.groups() + (None,) * 4 if day_match else (None,) * 6 + month_match.groups()  # type: ignore[union-attr]
        name = g[0] or g[4] or g[6] or g[8]
        day = g[1] or g[3]
        year_text = g[2] or g[5] or g[7] or g[9]
        month = _month_index(name)
        year = int(year_text) if year_text else ref.year
        if not day:
            start, end = _month_window(year, month)
            if not year_text and start > ref:
                start, end = _month_window(year - 1, month)
            return start, end, 0.8 if year_text else 0.7
        try:
            start = datetime(year, month, int(day), tzinfo=UTC)
        except ValueError:
            return None
        if not year_text and start > ref:
            start = start.replace(year=start.year - 1) if not (month == 2 and int(day) == 29) else start
        return start, start + _DAY, 0.9
    year_match = _YEAR.search(text)
    if year_match:
        start = datetime(int(year_match.group(1)), 1, 1, tzinfo=UTC)
        return start, start.replace(year=start.year + 1), 0.6
    return None


def _relative(text: str, ref: datetime) -> tuple[datetime, datetime, float] | None:
    """A window relative to the reference: "yesterday", "two weeks ago", "last Saturday", "last month"."""
    today = _day(ref)
    if match := _DAY_WORD.search(text):
        start = today - _DAY if match.group(1).lower() == "yesterday" else today
        return start, start + _DAY, 0.9
    if match := _AGO.search(text):
        days = _count(match.group(1)) * _UNITS[match.group(2).lower()]
        center = today - timedelta(days=days)
        half = timedelta(days=max(1, _UNITS[match.group(2).lower()] // 2))
        if match.group(2).lower() == "day":
            return center, center + _DAY, 0.8
        return center - half, center + half + _DAY, 0.6
    if match := _PAST.search(text):
        days = _count(match.group(1)) * _UNITS[match.group(2).lower()]
        return today - timedelta(days=days), ref + timedelta(microseconds=1), 0.6
    if match := _LAST_UNIT.search(text):
        which, unit = match.group(1).lower(), match.group(2).lower()
        if unit in ("week", "weekend"):
            monday = today - timedelta(days=today.weekday())
            start = monday if which == "this" else monday - timedelta(days=7)
            if unit == "weekend":
                start += timedelta(days=5)
                return start, start + 2 * _DAY, 0.8
            return start, start + timedelta(days=7), 0.8
        if unit == "month":
            index = ref.year * 12 + ref.month - 1 - (which != "this")
            start, end = _month_window(index // 12, index % 12 + 1)
            return start, end, 0.8
        year = ref.year if which == "this" else ref.year - 1
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC), 0.7
    if match := _WEEKDAY.search(text):
        target = _WEEKDAYS.index(match.group(2).lower())
        back = (today.weekday() - target) % 7 or 7  # the latest such day before today
        if (match.group(1) or "").lower() == "this" and today.weekday() == target:
            back = 0
        start = today - timedelta(days=back)
        return start, start + _DAY, 0.8 if match.group(1) else 0.3  # bare: "the Sunday mass" is no date
    return None


def _order(text: str) -> tuple[Order | None, float]:
    if _CHOICE.search(text):
        return None, 0.0  # "which came first, A or B?" needs both A and B, not the earliest
    if _LATEST.search(text):
        return "latest", 0.7
    if _EARLIEST.search(text):
        return "earliest", 0.7
    if match := _BEFORE_AFTER.search(text):
        return ("earliest" if match.group(1).lower() == "before" else "latest"), 0.3
    return None, 0.0


def resolve(text: str, reference: datetime) -> TimeHint:
    """The time hint of ``text`` read at ``reference`` (naive means UTC); empty when none is found."""
    if not mentions_time(text):
        return TimeHint()
    ref = reference.replace(tzinfo=UTC) if reference.tzinfo is None else reference.astimezone(UTC)
    window = _relative(text, ref) or _absolute(text, ref)
    order, order_confidence = _order(text)
    if window is None:
        return TimeHint(order=order, order_confidence=order_confidence)
    start, end, confidence = window
    return TimeHint(start, end, confidence, order, order_confidence)
