"""Pure SQL building blocks of the key-value table: namespace encoding and value filters.

A namespace is stored as its labels joined by ``.`` (labels never hold a period), so a prefix is
one indexable range (``ns = 'a.b' OR ns >= 'a.b.' AND ns < 'a.b/'``, in byte order) that stops at
segment boundaries and takes ``%`` and ``_`` literally. Filters have LangGraph's semantics: nested
equality and the operators ``$eq $ne $gt $gte $lt $lte``, dotted keys naming nested fields. One
walk of the filter (:func:`compile_filter`) checks it and builds the condition from the leaf tests
of a :class:`FilterSQL`: SQLite JSON1 (:data:`SQLITE_FILTERS`) or PostgreSQL ``jsonb``
(``storage.postgres.kv``). SQL here uses ``?`` placeholders; every value is a bound parameter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from memfuse_memory.errors import InvalidInputError, InvalidQueryError

SEPARATOR = "."
_AFTER_SEPARATOR = chr(ord(SEPARATOR) + 1)

COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def encode_namespace(namespace: Sequence[str]) -> str:
    """The stored text of a namespace (labels are checked by the caller: non-empty, no period, no NUL)."""
    return SEPARATOR.join(namespace)


def decode_namespace(text: str) -> tuple[str, ...]:
    """The namespace tuple of its stored text."""
    return tuple(text.split(SEPARATOR))


def prefix_condition(prefix: Sequence[str], column: str = "namespace") -> tuple[str, list[Any]]:
    """SQL selecting namespaces equal to ``prefix`` or below it (an empty prefix selects all)."""
    if not prefix:
        return "TRUE", []
    text = encode_namespace(prefix)
    return (
        f"({column} = ? OR ({column} >= ? AND {column} < ?))",
        [text, text + SEPARATOR, text + _AFTER_SEPARATOR],
    )


class FilterSQL(Protocol):
    """The leaf tests of a filter in one SQL dialect; ``path`` is the list of nested object keys."""

    def equal(self, column: str, path: list[str], expected: Any, params: list[Any]) -> str:
        """True where the value at ``path`` equals ``expected`` (a JSON scalar, None or a list), type included."""
        ...

    def is_object(self, column: str, path: list[str], params: list[Any]) -> str:
        """True where the value at ``path`` is an object (the filter ``{path: {}}``)."""
        ...

    def compare(self, column: str, path: list[str], comparison: str, operand: Any, params: list[Any]) -> str:
        """True where the value at ``path`` is of the operand's kind (number or text) and compares so."""
        ...

    def negate(self, condition: str) -> str:
        """True where ``condition`` is not (NULL, a missing field, counts as not)."""
        ...


def compile_filter(
    wanted: Mapping[str, Any] | None, dialect: FilterSQL | None = None, column: str = "value"
) -> tuple[str, list[Any]]:
    """SQL (and its parameters) true for the values that match a LangGraph filter."""
    dialect = dialect or SQLITE_FILTERS
    if not wanted:
        return "TRUE", []
    if not isinstance(wanted, Mapping):
        raise InvalidQueryError(f"a filter must be a dict, got {type(wanted).__name__}")
    clauses: list[str] = []
    params: list[Any] = []
    for key, expected in wanted.items():
        path = str(key).split(".") if isinstance(key, str) else [key]
        _condition(dialect, column, path, expected, clauses, params)
    return " AND ".join(clauses) or "TRUE", params


def _condition(
    dialect: FilterSQL, column: str, path: list[Any], expected: Any, clauses: list[str], params: list[Any]
) -> None:
    check_path(path)
    if isinstance(expected, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in expected):
        for operator, operand in expected.items():
            clauses.append(_operator(dialect, column, path, operator, operand, params))
        return
    if isinstance(expected, Mapping):
        if not expected:
            clauses.append(dialect.is_object(column, path, params))
        for key, nested in expected.items():
            _condition(dialect, column, [*path, key], nested, clauses, params)
        return
    clauses.append(_equal(dialect, column, path, expected, params))


def check_path(path: list[Any]) -> None:
    """Reject a filter key that is not a string or holds a double quote (it could not name a field)."""
    for key in path:
        if not isinstance(key, str) or '"' in key:
            raise InvalidQueryError(f"filter key {key!r} must be a string without double quotes")


def _equal(dialect: FilterSQL, column: str, path: list[str], expected: Any, params: list[Any]) -> str:
    if expected is not None and not isinstance(expected, list | tuple | str | int | float):
        raise InvalidQueryError(f"cannot filter on a {type(expected).__name__} value: {expected!r}")
    return dialect.equal(column, path, expected, params)


def _operator(dialect: FilterSQL, column: str, path: list[str], operator: Any, operand: Any, params: list[Any]) -> str:
    if operator == "$eq":
        return _equal(dialect, column, path, operand, params)
    if operator == "$ne":
        return dialect.negate(_equal(dialect, column, path, operand, params))
    comparison = COMPARISONS.get(operator)
    if comparison is None:
        raise InvalidQueryError(
            f"unsupported filter operator {operator!r}; use one of $eq, $ne, {', '.join(COMPARISONS)}"
        )
    if isinstance(operand, bool) or not isinstance(operand, int | float | str):
        raise InvalidQueryError(f"{operator} needs a number or a string, got {operand!r}")
    return dialect.compare(column, path, comparison, operand, params)


_INT64 = 2**63


def scalar(value: Any) -> Any:
    """A filter operand a 64-bit database can bind: bools as 0/1, integers beyond 64 bits as floats."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        return float(value)
    return value


def filter_json(value: Any) -> str:
    """The JSON text of a filter operand."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"filter value {value!r} is not JSON: {exc}") from exc


def json_path(keys: Sequence[str]) -> str:
    """A JSON1 path naming nested object keys, each quoted (so hyphens, digits and spaces work)."""
    return "$" + "".join(f'."{key}"' for key in keys)


class SqliteFilters:
    """Filter leaves on SQLite's JSON1: ``json_type`` checks the kind, ``json_extract`` the value."""

    def equal(self, column: str, path: list[str], expected: Any, params: list[Any]) -> str:
        where = json_path(path)
        if expected is None:
            params.append(where)
            return f"json_type({column}, ?) = 'null'"
        if isinstance(expected, list | tuple):
            params.extend([where, filter_json(expected)])
            return f"json_extract({column}, ?) = json(?)"
        if isinstance(expected, bool):
            params.extend([where, where, int(expected)])
            return f"(json_type({column}, ?) IN ('true', 'false') AND json_extract({column}, ?) = ?)"
        params.extend([where, where, scalar(expected)])
        kinds = "('text')" if isinstance(expected, str) else "('integer', 'real')"
        return f"(json_type({column}, ?) IN {kinds} AND json_extract({column}, ?) = ?)"

    def is_object(self, column: str, path: list[str], params: list[Any]) -> str:
        params.append(json_path(path))
        return f"json_type({column}, ?) = 'object'"

    def compare(self, column: str, path: list[str], comparison: str, operand: Any, params: list[Any]) -> str:
        where = json_path(path)
        params.extend([where, where, scalar(operand)])
        kinds = "('text')" if isinstance(operand, str) else "('integer', 'real')"
        return f"(json_type({column}, ?) IN {kinds} AND json_extract({column}, ?) {comparison} ?)"

    def negate(self, condition: str) -> str:
        return f"NOT COALESCE({condition}, 0)"


SQLITE_FILTERS = SqliteFilters()


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
