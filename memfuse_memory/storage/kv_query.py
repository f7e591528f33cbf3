"""Pure SQL building blocks of the key-value table: namespace encoding and value filters.

A namespace is stored as its labels joined by ``.`` (labels never hold a period), so a prefix is
one indexable range (``ns = 'a.b' OR ns >= 'a.b.' AND ns < 'a.b/'``) that stops at segment
boundaries and takes ``%`` and ``_`` literally. Filters compile to SQLite JSON1 ``json_extract``
conditions with bound parameters, with LangGraph's semantics: nested equality and the operators
``$eq $ne $gt $gte $lt $lte``, dotted keys naming nested fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from memfuse_memory.errors import InvalidInputError, InvalidQueryError

SEPARATOR = "."
_AFTER_SEPARATOR = chr(ord(SEPARATOR) + 1)

_COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def encode_namespace(namespace: Sequence[str]) -> str:
    """The stored text of a namespace (labels are checked by the caller: non-empty, no period, no NUL)."""
    return SEPARATOR.join(namespace)


def decode_namespace(text: str) -> tuple[str, ...]:
    """The namespace tuple of its stored text."""
    return tuple(text.split(SEPARATOR))


def prefix_condition(prefix: Sequence[str], column: str = "namespace") -> tuple[str, list[Any]]:
    """SQL selecting namespaces equal to ``prefix`` or below it (an empty prefix selects all)."""
    if not prefix:
        return "1", []
    text = encode_namespace(prefix)
    return (
        f"({column} = ? OR ({column} >= ? AND {column} < ?))",
        [text, text + SEPARATOR, text + _AFTER_SEPARATOR],
    )


def json_path(keys: Sequence[str]) -> str:
    """A JSON1 path naming nested object keys, each quoted (so hyphens, digits and spaces work)."""
    parts = []
    for key in keys:
        if not isinstance(key, str) or '"' in key:
            raise InvalidQueryError(f"filter key {key!r} must be a string without double quotes")
        parts.append(f'."{key}"')
    return "$" + "".join(parts)


def compile_filter(wanted: Mapping[str, Any] | None, column: str = "value") -> tuple[str, list[Any]]:
    """SQL (and its parameters) true for the values that match a LangGraph filter."""
    if not wanted:
        return "1", []
    if not isinstance(wanted, Mapping):
        raise InvalidQueryError(f"a filter must be a dict, got {type(wanted).__name__}")
    clauses: list[str] = []
    params: list[Any] = []
    for key, expected in wanted.items():
        path = [*str(key).split(".")] if isinstance(key, str) else [key]
        _condition(column, path, expected, clauses, params)
    return " AND ".join(clauses) or "1", params


def _condition(column: str, path: list[Any], expected: Any, clauses: list[str], params: list[Any]) -> None:
    if isinstance(expected, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in expected):
        for operator, operand in expected.items():
            clauses.append(_operator(column, json_path(path), operator, operand, params))
        return
    if isinstance(expected, Mapping):
        if not expected:
            clauses.append(f"json_type({column}, ?) = 'object'")
            params.append(json_path(path))
        for key, nested in expected.items():
            _condition(column, [*path, key], nested, clauses, params)
        return
    clauses.append(_equal(column, json_path(path), expected, params))


_INT64 = 2**63


def _scalar(value: Any) -> Any:
    """A filter operand SQLite can bind: bools as 0/1, integers beyond 64 bits as floats."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        return float(value)
    return value


def _equal(column: str, path: str, expected: Any, params: list[Any]) -> str:
    if expected is None:
        params.append(path)
        return f"json_type({column}, ?) = 'null'"
    if isinstance(expected, list | tuple):
        params.extend([path, _dumps(expected)])
        return f"json_extract({column}, ?) = json(?)"
    if isinstance(expected, bool):
        params.extend([path, path, int(expected)])
        return f"(json_type({column}, ?) IN ('true', 'false') AND json_extract({column}, ?) = ?)"
    if not isinstance(expected, str | int | float):
        raise InvalidQueryError(f"cannot filter on a {type(expected).__name__} value: {expected!r}")
    params.extend([path, path, _scalar(expected)])
    kinds = "('text')" if isinstance(expected, str) else "('integer', 'real')"
    return f"(json_type({column}, ?) IN {kinds} AND json_extract({column}, ?) = ?)"


def _operator(column: str, path: str, operator: Any, operand: Any, params: list[Any]) -> str:
    if operator == "$eq":
        return _equal(column, path, operand, params)
    if operator == "$ne":
        inner = _equal(column, path, operand, params)
        return f"NOT COALESCE({inner}, 0)"
    comparison = _COMPARISONS.get(operator)
    if comparison is None:
        raise InvalidQueryError(
            f"unsupported filter operator {operator!r}; use one of $eq, $ne, {', '.join(_COMPARISONS)}"
        )
    if isinstance(operand, bool) or not isinstance(operand, int | float | str):
        raise InvalidQueryError(f"{operator} needs a number or a string, got {operand!r}")
    params.extend([path, path, _scalar(operand)])
    kinds = "('text')" if isinstance(operand, str) else "('integer', 'real')"
    return f"(json_type({column}, ?) IN {kinds} AND json_extract({column}, ?) {comparison} ?)"


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"filter value {value!r} is not JSON: {exc}") from exc


def dumps_value(value: Mapping[str, Any]) -> str:
    """The stored JSON text of an item value (compact, Unicode kept)."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"an item value must be valid Unicode text: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"an item value must be JSON-serializable: {exc}") from exc
    return text
