"""Policy variables: ``${aws:username}``, ``${aws:PrincipalTag/team, 'none'}``, ``${*}``, ...

A text that may hold variables is parsed once into a template: raw text (in which ``*`` and
``?`` are wildcards where the element allows them), literal text (from ``${*}``, ``${?}``,
``${$}`` and, at evaluation time, from resolved variables) and variable references. Resolving a
template against a request context gives plain text, or ``None`` when a variable has no value
and no default: per AWS, such a value matches nothing.

Only policies of ``Version`` ``2012-10-17`` have variables; in older policies ``${...}`` is text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from iamguard.policy.patterns import Token, tokenize


@dataclass(frozen=True, slots=True)
class Literal:
    """Text in which ``*`` and ``?`` are plain characters."""

    text: str


@dataclass(frozen=True, slots=True)
class Variable:
    """A reference to a request-context key (lower-cased), with an optional default."""

    key: str
    default: str | None = None
    source: str = ""  # the text as written, ``${...}``


Part = str | Literal | Variable
Template = tuple[Part, ...]
ContextValue = str | tuple[str, ...]
Context = Mapping[str, ContextValue]

_SPECIAL: Final = {"*": "*", "?": "?", "$": "$"}
_VARIABLE: Final = re.compile(
    r"\$\{\s*(?P<key>[^\s,'{}]+)\s*(?:,\s*'(?P<default>(?:[^']|'')*)'\s*)?\}"
)


def parse_template(text: str, variables: bool = True) -> Template:
    """Parse ``text`` into a template; with ``variables=False`` it is all raw text."""
    if not variables or "${" not in text:
        return (text,)
    parts: list[Part] = []
    pos = 0
    for m in _VARIABLE.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        key, default = m.group("key"), m.group("default")
        if key in _SPECIAL and default is None:
            parts.append(Literal(_SPECIAL[key]))
        else:
            value = None if default is None else default.replace("''", "'")
            parts.append(Variable(key.lower(), value, m.group(0)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


_ARN_RESOURCE_COLONS: Final = 5  # the resource part of an ARN starts after the fifth colon


def parse_arn_template(text: str, variables: bool = True) -> Template:
    """Parse an ARN pattern: variables stand only in the resource part (after the fifth colon).

    Per AWS, a variable cannot replace the partition, service, region or account; written there,
    it is plain text.
    """
    template = parse_template(text, variables)
    if not text.startswith("arn:") or len(template) == 1:
        return template
    out: list[Part] = []
    colons = 0
    for part in template:
        if isinstance(part, Variable) and colons < _ARN_RESOURCE_COLONS:
            out.append(Literal(part.source))
            continue
        if isinstance(part, str):
            colons += part.count(":")
        out.append(part)
    return tuple(out)


def has_variables(template: Template) -> bool:
    """True when resolving the template needs the request context."""
    return any(isinstance(p, Variable) for p in template)


def literal_prefix(template: Template) -> str:
    """The text every match starts with: the template up to its first wildcard or variable."""
    out: list[str] = []
    for part in template:
        if isinstance(part, Variable):
            break
        if isinstance(part, Literal):
            out.append(part.text)
            continue
        cut = min((i for i in (part.find("*"), part.find("?")) if i >= 0), default=-1)
        if cut >= 0:
            out.append(part[:cut])
            break
        out.append(part)
    return "".join(out)


def variable_values(template: Template, context: Context) -> tuple[str | None, ...]:
    """The value each variable of the template takes in ``context`` (None: no value)."""
    return tuple(_value(p, context) for p in template if isinstance(p, Variable))


def _value(variable: Variable, context: Context) -> str | None:
    value = context.get(variable.key)
    if isinstance(value, str):
        return value
    # Absent, or multi-valued (a set cannot stand in for one value): the default, if any.
    return variable.default


def resolve_text(template: Template, context: Context) -> str | None:
    """The template as plain text (no wildcards), or None if a variable has no value."""
    out: list[str] = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Literal):
            out.append(part.text)
        else:
            value = _value(part, context)
            if value is None:
                return None
            out.append(value)
    return "".join(out)


def resolve_tokens(template: Template, context: Context) -> tuple[Token, ...] | None:
    """The template as wildcard tokens, or None if a variable has no value.

    ``*`` and ``?`` in raw text are wildcards; in literal text and variable values they are not.
    """
    out: list[Token] = []
    for part in template:
        if isinstance(part, str):
            out.extend(tokenize(part))
            continue
        text = part.text if isinstance(part, Literal) else _value(part, context)
        if text is None:
            return None
        if text:
            out.append(text)
    return tuple(_merge_literals(out))


def static_tokens(template: Template) -> tuple[Token, ...]:
    """The tokens of a template that has no variables."""
    tokens = resolve_tokens(template, {})
    assert tokens is not None  # a template without variables always resolves
    return tokens


def _merge_literals(tokens: Sequence[Token]) -> list[Token]:
    merged: list[Token] = []
    for t in tokens:
        if isinstance(t, str) and merged and isinstance(merged[-1], str):
            merged[-1] += t
        else:
            merged.append(t)
    return merged
