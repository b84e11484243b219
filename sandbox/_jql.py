"""A small JQL subset for the fake Jira: AND/OR/NOT, parentheses, comparisons, IN, IS EMPTY, ORDER BY."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

__all__ = ["DATE_FIELDS", "TEXT_FIELDS", "JqlError", "Query", "compile_jql"]

TEXT_FIELDS = frozenset({"project", "key", "issuekey", "status", "issuetype", "type", "resolution",
                         "reporter", "assignee", "priority"})
DATE_FIELDS = frozenset({"updated", "created", "resolved", "resolutiondate"})
_ALIASES = {"issuekey": "key", "type": "issuetype", "resolutiondate": "resolved"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>!=|>=|<=|=|>|<|~)
      | (?P<punct>[(),])
      | "(?P<dq>[^"]*)"
      | '(?P<sq>[^']*)'
      | (?P<word>[A-Za-z0-9_.\-/:@+]+)
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"AND", "OR", "NOT", "ORDER", "BY", "ASC", "DESC", "IN", "IS", "EMPTY", "NULL"})
_RELATIVE = re.compile(r"^([+-]?)(\d+)([mhdw])$")
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")

Value = str | datetime | None
Getter = Callable[[str], Value]
"""Returns an issue's value for a (canonical, lower-case) field name."""


class JqlError(ValueError):
    """The query is outside the subset or malformed; the fake answers 400 with this message."""


@dataclass(frozen=True)
class _Tok:
    kind: str  # "op", "punct", "str" (quoted), "word"
    text: str


@dataclass(frozen=True)
class Query:
    """A compiled query: a predicate over issues and the ORDER BY clauses."""

    matches: Callable[[Getter], bool]
    order: tuple[tuple[str, bool], ...]  # (field, descending)


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise JqlError(f"Error in the JQL Query: unexpected character at position {pos}.")
        pos = m.end()
        if m.group("op"):
            out.append(_Tok("op", m.group("op")))
        elif m.group("punct"):
            out.append(_Tok("punct", m.group("punct")))
        elif m.group("dq") is not None or m.group("sq") is not None:
            out.append(_Tok("str", m.group("dq") if m.group("dq") is not None else m.group("sq")))
        else:
            out.append(_Tok("word", m.group("word")))
    return out


def _parse_date(text: str, zone: tzinfo, now: datetime) -> datetime:
    """A JQL date literal, read in the searching user's time zone (as Jira does)."""
    rel = _RELATIVE.match(text.strip())
    if rel:
        amount = int(rel.group(2)) * (-1 if rel.group(1) == "-" else 1)
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[rel.group(3)]
        return now + timedelta(**{unit: amount})
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=zone).astimezone(UTC)
        except ValueError:
            continue
    raise JqlError(
        f"Date value '{text}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
        "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
    )


class _Parser:
    def __init__(self, tokens: list[_Tok], zone: tzinfo, now: datetime,
                 known: Callable[[str, str], None]) -> None:
        self.toks = tokens
        self.i = 0
        self.zone = zone
        self.now = now
        self.known = known

    def peek(self, upper: bool = True) -> str | None:
        if self.i >= len(self.toks):
            return None
        tok = self.toks[self.i]
        return tok.text.upper() if upper and tok.kind == "word" else tok.text

    def take(self) -> _Tok:
        if self.i >= len(self.toks):
            raise JqlError("Error in the JQL Query: the query ended unexpectedly.")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect_word(self, word: str) -> None:
        tok = self.take()
        if tok.kind != "word" or tok.text.upper() != word:
            raise JqlError(f"Error in the JQL Query: expected '{word}' but got '{tok.text}'.")

    def query(self) -> Query:
        matches: Callable[[Getter], bool] = lambda get: True  # noqa: E731 - an empty query matches all
        if self.peek() not in (None, "ORDER"):
            matches = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.peek() == "ORDER":
            self.take()
            self.expect_word("BY")
            while True:
                field = self.field()
                desc = False
                if self.peek() in ("ASC", "DESC"):
                    desc = self.take().text.upper() == "DESC"
                order.append((field, desc))
                if self.peek() != ",":
                    break
                self.take()
        if self.i != len(self.toks):
            raise JqlError(f"Error in the JQL Query: unexpected '{self.toks[self.i].text}'.")
        return Query(matches, tuple(order))

    def or_expr(self) -> Callable[[Getter], bool]:
        parts = [self.and_expr()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda get: any(p(get) for p in parts))

    def and_expr(self) -> Callable[[Getter], bool]:
        parts = [self.unary()]
        while self.peek() == "AND":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda get: all(p(get) for p in parts))

    def unary(self) -> Callable[[Getter], bool]:
        if self.peek() == "NOT":
            self.take()
            inner = self.unary()
            return lambda get: not inner(get)
        if self.peek() == "(":
            self.take()
            inner = self.or_expr()
            if self.peek() != ")":
                raise JqlError("Error in the JQL Query: expected ')'.")
            self.take()
            return inner
        return self.clause()

    def field(self) -> str:
        tok = self.take()
        if tok.kind not in ("word", "str") or tok.text.upper() in _KEYWORDS:
            raise JqlError(f"Error in the JQL Query: expected a field name but got '{tok.text}'.")
        name = tok.text.lower()
        if name not in TEXT_FIELDS | DATE_FIELDS:
            raise JqlError(f"Field '{tok.text}' does not exist or you do not have permission to view it.")
        return _ALIASES.get(name, name)

    def value(self) -> str:
        tok = self.take()
        if tok.kind not in ("word", "str"):
            raise JqlError(f"Error in the JQL Query: expected a value but got '{tok.text}'.")
        return tok.text

    def clause(self) -> Callable[[Getter], bool]:
        field = self.field()
        if self.peek() == "IS":
            self.take()
            negate = self.peek() == "NOT"
            if negate:
                self.take()
            if self.take().text.upper() not in ("EMPTY", "NULL"):
                raise JqlError("Error in the JQL Query: expected EMPTY after IS.")
            return lambda get: (get(field) is None) != negate
        negate_in = self.peek() == "NOT"
        if negate_in:
            self.take()
        if self.peek() == "IN":
            self.take()
            if self.take().text != "(":
                raise JqlError("Error in the JQL Query: expected '(' after IN.")
            values = [self.value()]
            while self.peek() == ",":
                self.take()
                values.append(self.value())
            if self.take().text != ")":
                raise JqlError("Error in the JQL Query: expected ')'.")
            for v in values:
                self.known(field, v)
            wanted = {v.casefold() for v in values}
            return lambda get: (isinstance(got := get(field), str) and got.casefold() in wanted) != negate_in
        if negate_in:
            raise JqlError("Error in the JQL Query: expected IN after NOT.")
        op_tok = self.take()
        if op_tok.kind != "op":
            raise JqlError(f"Error in the JQL Query: expected an operator but got '{op_tok.text}'.")
        op = op_tok.text
        raw = self.value()
        if field in DATE_FIELDS:
            return self._date_clause(field, op, _parse_date(raw, self.zone, self.now))
        if op not in ("=", "!=", "~"):
            raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")
        self.known(field, raw)
        folded = raw.casefold()
        if op == "~":
            return lambda get: isinstance(got := get(field), str) and folded in got.casefold()
        equal = op == "="
        return lambda get: (isinstance(got := get(field), str) and got.casefold() == folded) == equal

    @staticmethod
    def _date_clause(field: str, op: str, when: datetime) -> Callable[[Getter], bool]:
        compare: dict[str, Callable[[datetime], bool]] = {
            "=": lambda v: v == when, "!=": lambda v: v != when, ">=": lambda v: v >= when,
            "<=": lambda v: v <= when, ">": lambda v: v > when, "<": lambda v: v < when,
        }
        if op not in compare:
            raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")
        test = compare[op]
        return lambda get: isinstance(got := get(field), datetime) and test(got)


def compile_jql(text: str, zone: tzinfo, now: datetime,
                known: Callable[[str, str], None] = lambda field, value: None) -> Query:
    """Compile ``text``; date literals are read in ``zone``, relative ones against ``now``.

    ``known(field, value)`` may raise JqlError for a value Jira would reject (an unknown project).
    """
    return _Parser(_tokens(text), zone, now, known).query()
