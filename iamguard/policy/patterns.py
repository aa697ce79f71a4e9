"""Wildcard matching for actions, resources and ``...Like`` conditions.

A pattern is a sequence of tokens: literal text, ``STAR`` (``*``, any run of characters) and
``QMARK`` (``?``, one character). Literal text may itself contain ``*`` or ``?`` (a policy
variable such as ``${*}`` resolves to a literal asterisk), so wildcards are tokens, not characters.

Matching never backtracks: the pattern is cut at each ``*`` into fixed-length pieces, the first
must start the string, the last must end it, and each middle piece is found at its leftmost
position after the previous one. Leftmost is always safe for fixed-length pieces, so a match
costs one scan of the string per piece, whatever the number of stars.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from operator import methodcaller
from typing import Final


class Wildcard:
    """A wildcard token: ``STAR`` or ``QMARK``."""

    __slots__ = ("symbol",)

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol

    def __repr__(self) -> str:
        return self.symbol


STAR: Final = Wildcard("*")
QMARK: Final = Wildcard("?")

Token = str | Wildcard
Matcher = Callable[[str], bool]


def tokenize(text: str) -> list[Token]:
    """Read ``*`` and ``?`` in ``text`` as wildcards, everything else as literal text."""
    tokens: list[Token] = []
    start = 0
    for i, ch in enumerate(text):
        if ch in "*?":
            if i > start:
                tokens.append(text[start:i])
            tokens.append(STAR if ch == "*" else QMARK)
            start = i + 1
    if start < len(text):
        tokens.append(text[start:])
    return tokens


def has_wildcard(tokens: Iterable[Token]) -> bool:
    """True when any token is a wildcard."""
    return any(isinstance(t, Wildcard) for t in tokens)


def _always(_: str) -> bool:
    return True


def _piece_regex(piece: Sequence[Token]) -> re.Pattern[str]:
    """A fixed-length piece with ``?`` as a regex of literals and ``.``: it cannot backtrack."""
    return re.compile(
        "".join("." if isinstance(t, Wildcard) else re.escape(t) for t in piece), re.DOTALL
    )


class _Piece:
    """A fixed-length run of literal text and ``?`` between two stars."""

    __slots__ = ("length", "literal", "regex")

    def __init__(self, tokens: Sequence[Token]) -> None:
        texts = [t for t in tokens if isinstance(t, str)]
        self.length = sum(map(len, texts)) + (len(tokens) - len(texts))  # each `?` is one
        if len(texts) < len(tokens):
            self.literal: str | None = None
            self.regex: re.Pattern[str] | None = _piece_regex(tokens)
        else:
            self.literal = "".join(texts)
            self.regex = None

    def at(self, s: str, pos: int) -> bool:
        """Does the piece stand at ``pos`` in ``s``?"""
        if self.literal is not None:
            return s.startswith(self.literal, pos)
        return self.regex.match(s, pos) is not None  # type: ignore[union-attr]

    def find(self, s: str, start: int, end: int) -> int:
        """The leftmost index at which the piece stands within ``s[start:end]``, or -1."""
        if self.literal is not None:
            return s.find(self.literal, start, end)
        m = self.regex.search(s, start, end)  # type: ignore[union-attr]
        return -1 if m is None else m.start()


def _split_at_stars(tokens: Sequence[Token]) -> list[list[Token]]:
    pieces: list[list[Token]] = [[]]
    for t in tokens:
        if t is STAR:
            pieces.append([])
        else:
            pieces[-1].append(t)
    return pieces


def compile_glob(tokens: Sequence[Token]) -> Matcher:
    """Compile a token sequence into a predicate over whole strings."""
    pieces = _split_at_stars(tokens)
    if len(pieces) == 1:
        only = _Piece(pieces[0])
        if only.literal is not None:
            return only.literal.__eq__
        regex = only.regex
        return lambda s: regex.fullmatch(s) is not None  # type: ignore[union-attr]
    head, *middle, tail = (_Piece(p) for p in pieces)
    middle = [p for p in middle if p.length]
    if not head.length and not tail.length and not middle:
        return _always
    # The commonest shapes, `prefix*` and `*suffix`, as C-level callables.
    if not middle and tail.length == 0 and head.literal is not None:
        return methodcaller("startswith", head.literal)
    if not middle and head.length == 0 and tail.literal is not None:
        return methodcaller("endswith", tail.literal)
    min_length = head.length + tail.length + sum(p.length for p in middle)

    def match(s: str) -> bool:
        n = len(s)
        if n < min_length:
            return False
        end = n - tail.length
        if not head.at(s, 0) or not tail.at(s, end):
            return False
        pos = head.length
        for piece in middle:
            found = piece.find(s, pos, end)
            if found < 0:
                return False
            pos = found + piece.length
        return True

    return match


def _split_segments(tokens: Sequence[Token], limit: int) -> list[list[Token]]:
    """Split tokens at the first ``limit`` colons of their literal text."""
    segments: list[list[Token]] = [[]]
    for t in tokens:
        if isinstance(t, Wildcard) or len(segments) > limit or ":" not in t:
            segments[-1].append(t)
            continue
        parts = t.split(":", limit + 1 - len(segments))
        for i, part in enumerate(parts):
            if i:
                segments.append([])
            if part:
                segments[-1].append(part)
    return segments


_ARN_SEGMENTS: Final = 6  # arn:partition:service:region:account:resource


def compile_arn(tokens: Sequence[Token]) -> Matcher:
    """Compile an ARN-aware resource pattern.

    ``*`` alone matches everything. A pattern that starts ``arn:`` is matched segment by
    segment (partition, service, region, account, then the resource part): a wildcard in one of
    the first five segments stays inside it, while in the last segment it also crosses ``:`` and
    ``/``. Any other pattern is matched against the whole string.
    """
    if len(tokens) == 1 and tokens[0] is STAR:
        return _always
    first = tokens[0] if tokens else ""
    if not isinstance(first, str) or not first.startswith("arn:"):
        return compile_glob(tokens)
    segments = _split_segments(tokens, _ARN_SEGMENTS - 1)
    if not any(has_wildcard(seg) for seg in segments[:-1]):
        # With literal leading segments, the colons must line up: a whole-string match is exact.
        return compile_glob(tokens)
    matchers = [compile_glob(seg) for seg in segments]
    count = len(segments)

    def match(s: str) -> bool:
        parts = s.split(":", count - 1)
        if len(parts) != count:
            return False
        return all(m(p) for m, p in zip(matchers, parts, strict=True))

    return match


@lru_cache(maxsize=4096)
def compile_arn_cached(tokens: tuple[Token, ...]) -> Matcher:
    """``compile_arn`` for patterns built at evaluation time (after variables are resolved)."""
    return compile_arn(tokens)


@lru_cache(maxsize=4096)
def compile_glob_cached(tokens: tuple[Token, ...]) -> Matcher:
    """``compile_glob`` for patterns built at evaluation time (after variables are resolved)."""
    return compile_glob(tokens)
