"""The grammar of AWS's policy language: read a document, report every problem, compile statements.

Every problem is recorded with its JSON path (``Statement[2].Condition.StringEquals``) and the
walk goes on, so that one ``MalformedPolicyDocument`` lists them all.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from iamguard.errors import MalformedPolicyDocument, PolicyProblem
from iamguard.policy.conditions import (
    Condition,
    ConditionValueError,
    UnknownOperator,
    split_operator,
)
from iamguard.policy.statement import Principals, Statement
from iamguard.policy.variables import Template, parse_arn_template

KINDS: Final = ("identity", "resource", "trust")
VERSIONS: Final = ("2012-10-17", "2008-10-17")
VARIABLES_VERSION: Final = "2012-10-17"

_TOP_KEYS: Final = ("Version", "Id", "Statement")
_STATEMENT_KEYS: Final = (
    "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
    "Resource", "NotResource", "Condition",
)  # fmt: skip
_PRINCIPAL_KEYS: Final = ("AWS", "Service", "Federated", "CanonicalUser")
_IAM_SID: Final = re.compile(r"[A-Za-z0-9]*")
_ACTION: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*:[A-Za-z0-9_.*?-]+")
_CONDITION_KEY: Final = re.compile(r"[^\s:]+:\S+")
_ACCOUNT_ID: Final = re.compile(r"\d{12}")
_PRINCIPAL_ARN: Final = re.compile(
    r"arn:[a-z0-9-]+:(?:iam::\d{12}:(?:root|user/\S+|role/\S+|federated-user/\S+)"
    r"|sts::\d{12}:(?:assumed-role/[^/\s]+/\S+|federated-user/\S+))"
)


class _JSONObject(dict):  # type: ignore[type-arg]
    """A JSON object as read from text, remembering keys that appeared twice."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _JSONObject:
    obj = _JSONObject(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicates = tuple(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return obj


def _reject_constant(name: str) -> None:
    raise ValueError(f"`{name}` is not JSON")


def load_json(text: str | bytes) -> Any:
    """Read JSON text strictly (no NaN or Infinity); raise ``MalformedPolicyDocument``."""
    try:
        return json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        problem = PolicyProblem("", f"not valid JSON: {e.msg} (line {e.lineno} column {e.colno})")
    except (ValueError, UnicodeDecodeError) as e:
        problem = PolicyProblem("", f"not valid JSON: {e}")
    except RecursionError:
        problem = PolicyProblem("", "not valid JSON: nested too deeply")
    raise MalformedPolicyDocument([problem])


_ABSENT: Final = object()  # an element not written at all (as opposed to written as null)


def _suggest(name: str, choices: tuple[str, ...]) -> str:
    same = [c for c in choices if c.lower() == name.lower()]
    match = same or difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean `{match[0]}`?)" if match else ""


def _quoted(value: Any) -> str:
    """A value in backticks as JSON writes it; one with no JSON text by its type (``a bytes``)."""
    if isinstance(value, str):
        return f"`{value}`"
    try:
        return f"`{json.dumps(value, allow_nan=False)}`"
    except (TypeError, ValueError):
        return _type_name(value)


def _show(value: Any) -> str:
    """A value as an error message quotes it: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return _type_name(value)


def _type_name(value: Any) -> str:
    """How an error message names a JSON value's type."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (int, float)):
        return "a number"
    known = {str: "a string", list: "a list", type(None): "null"}
    return known.get(type(value), f"a {type(value).__name__}")


class _Reader:
    """Walks one document, collecting problems and compiled statements."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.problems: list[PolicyProblem] = []
        self.variables = True

    def problem(self, path: str, message: str) -> None:
        self.problems.append(PolicyProblem(path, message))

    def check_keys(
        self, obj: Mapping[str, Any], path: str, allowed: tuple[str, ...] | None = None
    ) -> None:
        """Report keys given twice (in JSON text) and, when ``allowed`` is given, unknown keys."""
        for key in getattr(obj, "duplicates", ()):
            self.problem(path, f"duplicate key `{key}`")
        for key in obj:
            if not isinstance(key, str):
                self.problem(path, f"key `{_show(key)}` is not a string")
            elif allowed is not None and key not in allowed:
                self.problem(path, f"unknown key `{key}`{_suggest(key, allowed)}")

    def strings(self, value: Any, path: str) -> list[str] | None:
        """A string or a non-empty list of strings, as a list; None (with problems) otherwise."""
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            self.problem(path, f"must be a string or a list of strings, not {_type_name(value)}")
            return None
        if not value:
            self.problem(path, "must not be an empty list")
            return None
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.problem(f"{path}[{i}]", f"must be a string, not {_type_name(item)}")
        return list(value) if all(isinstance(v, str) for v in value) else None

    # --- the document ------------------------------------------------------------------------

    def read(self, doc: Any) -> tuple[str | None, str | None, list[Statement]]:
        if not isinstance(doc, Mapping):
            self.problem("", f"must be a JSON object, not {_type_name(doc)}")
            return None, None, []
        self.check_keys(doc, "", _TOP_KEYS)
        version = doc.get("Version")
        if "Version" in doc and version not in VERSIONS:
            self.problem("Version", f"{_quoted(version)} is not `2012-10-17` or `2008-10-17`")
            version = None
        self.variables = version == VARIABLES_VERSION
        policy_id = doc.get("Id")
        if "Id" in doc and not isinstance(policy_id, str):
            self.problem("Id", f"must be a string, not {_type_name(policy_id)}")
            policy_id = None
        if "Statement" not in doc:
            self.problem("", "missing `Statement`")
            return version, policy_id, []
        raw = doc["Statement"]
        if isinstance(raw, Mapping):
            entries = [("Statement", raw)]
        elif isinstance(raw, list) and raw:
            entries = [(f"Statement[{i}]", s) for i, s in enumerate(raw)]
        else:
            what = "an empty list" if raw == [] else _type_name(raw)
            self.problem("Statement", f"must be an object or a non-empty list, not {what}")
            return version, policy_id, []
        statements = []
        sids: dict[str, str] = {}
        for index, (path, entry) in enumerate(entries):
            statement = self.statement(entry, path, index, sids)
            if statement is not None:
                statements.append(statement)
        return version, policy_id, statements

    # --- one statement -------------------------------------------------------------------------

    def statement(self, st: Any, path: str, index: int, sids: dict[str, str]) -> Statement | None:
        if not isinstance(st, Mapping):
            self.problem(path, f"must be an object, not {_type_name(st)}")
            return None
        before = len(self.problems)
        self.check_keys(st, path, _STATEMENT_KEYS)
        sid = self.sid(st, path, sids)
        effect = st.get("Effect")
        if "Effect" not in st:
            self.problem(path, "missing `Effect`")
        elif effect not in ("Allow", "Deny"):
            self.problem(f"{path}.Effect", f"{_quoted(effect)} is not `Allow` or `Deny`")
        actions, not_action = self.actions(st, path)
        resources, not_resource = self.resources(st, path)
        principals = self.principals(st, path)
        conditions = (
            self.conditions(st["Condition"], f"{path}.Condition") if "Condition" in st else []
        )
        if len(self.problems) > before:
            return None
        return Statement(
            index=index, sid=sid, deny=effect == "Deny", actions=actions or [],
            not_action=not_action, resources=resources, not_resource=not_resource,
            principals=principals, conditions=conditions,
        )  # fmt: skip

    def sid(self, st: Mapping[str, Any], path: str, sids: dict[str, str]) -> str | None:
        if "Sid" not in st:
            return None
        sid = st["Sid"]
        if not isinstance(sid, str):
            self.problem(f"{path}.Sid", f"must be a string, not {_type_name(sid)}")
            return None
        if self.kind != "resource" and not _IAM_SID.fullmatch(sid):
            self.problem(f"{path}.Sid", f"`{sid}` may hold only the letters A-Z, a-z and 0-9")
        if sid in sids:
            self.problem(f"{path}.Sid", f"duplicate Sid `{sid}` (also at {sids[sid]})")
        else:
            sids[sid] = path
        return sid

    def exactly_one(self, st: Mapping[str, Any], path: str, key: str) -> tuple[Any, bool]:
        """The value of ``key`` or ``NotKey`` and whether it was the negated one.

        ``_ABSENT`` (with a problem recorded) when neither or both are written; a value written
        as null is returned as None, for the caller to refuse like any other wrong type.
        """
        negated_key = f"Not{key}"
        if key in st and negated_key in st:
            self.problem(path, f"has both `{key}` and `{negated_key}`")
        elif key not in st and negated_key not in st:
            self.problem(path, f"missing `{key}` or `{negated_key}`")
        elif negated_key in st:
            return st[negated_key], True
        else:
            return st[key], False
        return _ABSENT, False

    def actions(self, st: Mapping[str, Any], path: str) -> tuple[list[str] | None, bool]:
        value, negated = self.exactly_one(st, path, "Action")
        if value is _ABSENT:
            return None, negated
        vpath = f"{path}.{'NotAction' if negated else 'Action'}"
        actions = self.strings(value, vpath)
        for i, action in enumerate(actions or []):
            if action != "*" and not _ACTION.fullmatch(action):
                where = vpath if isinstance(value, str) else f"{vpath}[{i}]"
                self.problem(where, f"`{action}` is not `*` or `service:action`")
        return actions, negated

    def resources(self, st: Mapping[str, Any], path: str) -> tuple[list[Template] | None, bool]:
        if self.kind == "trust":
            for key in ("Resource", "NotResource"):
                if key in st:
                    self.problem(path, f"`{key}` is not allowed in a trust policy")
            return None, False
        value, negated = self.exactly_one(st, path, "Resource")
        if value is _ABSENT:
            return None, negated
        vpath = f"{path}.{'NotResource' if negated else 'Resource'}"
        texts = self.strings(value, vpath)
        templates = []
        for i, text in enumerate(texts or []):
            where = vpath if isinstance(value, str) else f"{vpath}[{i}]"
            templates.append(self.resource(text, where))
        return templates, negated

    def resource(self, text: str, path: str) -> Template:
        if not text:
            self.problem(path, "must not be empty")
        elif text.startswith("arn:") and text.count(":") < 5 and not text.endswith("*"):
            self.problem(
                path, f"`{text}` is not an ARN (arn:partition:service:region:account:resource)"
            )
        return parse_arn_template(text, self.variables)

    def principals(self, st: Mapping[str, Any], path: str) -> Principals | None:
        if self.kind == "identity":
            for key in ("Principal", "NotPrincipal"):
                if key in st:
                    self.problem(path, f"`{key}` is not allowed in an identity-based policy")
            return None
        value, negated = self.exactly_one(st, path, "Principal")
        if value is _ABSENT:
            return None
        vpath = f"{path}.{'NotPrincipal' if negated else 'Principal'}"
        if negated and self.kind == "trust":
            self.problem(path, "`NotPrincipal` is not allowed in a trust policy")
        elif negated and st.get("Effect") == "Allow":
            self.problem(path, '`NotPrincipal` may be used only with `"Effect": "Deny"`')
        if value == "*":
            return Principals(True, (), (), negated)
        if not isinstance(value, Mapping):
            self.problem(vpath, 'must be `*` or an object such as {"AWS": ...}')
            return None
        if not value:
            self.problem(vpath, "must name at least one principal")
            return None
        self.check_keys(value, vpath, _PRINCIPAL_KEYS)
        arns: list[str] = []
        others: list[str] = []
        for key in _PRINCIPAL_KEYS:
            if key not in value:
                continue
            names = self.strings(value[key], f"{vpath}.{key}") or []
            if key == "AWS":
                for i, name in enumerate(names):
                    where = f"{vpath}.AWS" if isinstance(value[key], str) else f"{vpath}.AWS[{i}]"
                    self.principal_arn(name, where)
                arns.extend(names)
            else:
                others.extend(names)
        return Principals(False, arns, others, negated)

    def principal_arn(self, name: str, path: str) -> None:
        if name == "*" or _ACCOUNT_ID.fullmatch(name):
            return
        if "*" in name or "?" in name:
            self.problem(path, f"`{name}`: wildcards are not allowed in a principal ARN")
        elif not _PRINCIPAL_ARN.fullmatch(name):
            self.problem(path, f"`{name}` is not `*`, an account id or a principal ARN")

    def conditions(self, block: Any, path: str) -> list[Condition]:
        if not isinstance(block, Mapping):
            self.problem(path, f"must be an object, not {_type_name(block)}")
            return []
        self.check_keys(block, path)
        conditions = []
        for operator, entries in block.items():
            if not isinstance(operator, str):
                continue  # reported by check_keys
            opath = f"{path}.{operator}"
            try:
                split_operator(operator)
            except UnknownOperator as e:
                self.problem(path, str(e))
                continue
            if not isinstance(entries, Mapping):
                what = _type_name(entries)
                self.problem(opath, f"must be an object of condition keys, not {what}")
                continue
            self.check_keys(entries, opath)
            for key, raw in entries.items():
                if not isinstance(key, str):
                    continue  # reported by check_keys
                condition = self.condition(operator, key, raw, f"{opath}.{key}")
                if condition is not None:
                    conditions.append(condition)
        return conditions

    def condition(self, operator: str, key: str, raw: Any, path: str) -> Condition | None:
        if not _CONDITION_KEY.fullmatch(key):
            self.problem(path, f"condition key `{key}` is not `service:key`")
            return None
        values = raw if isinstance(raw, list) else [raw]
        texts: list[str] = []
        for i, value in enumerate(values):
            where = f"{path}[{i}]" if isinstance(raw, list) else path
            text = _condition_text(value)
            if text is None:
                what = _type_name(value)
                if isinstance(value, float):  # NaN or an infinity
                    what = f"`{value!r}`"
                elif isinstance(value, int):
                    what = "a number that long"
                self.problem(where, f"must be a string, number or boolean, not {what}")
                continue
            try:  # each value alone, so that every bad one is named at its index
                Condition(operator, key, [text], self.variables)
            except ConditionValueError as e:
                self.problem(where, str(e))
                continue
            texts.append(text)
        if len(texts) != len(values):
            return None
        return Condition(operator, key, texts, self.variables)


def _condition_text(value: Any) -> str | None:
    """A condition value as text (JSON numbers and booleans as JSON writes them), or None."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        try:
            return json.dumps(value, allow_nan=False)
        except ValueError:  # NaN, an infinity, or an integer of more digits than Python prints
            return None
    return None


def read_document(doc: Any, kind: str) -> tuple[str | None, str | None, list[Statement]]:
    """Validate and compile a parsed document: ``(Version, Id, statements)``.

    Raises ``MalformedPolicyDocument`` listing every problem.
    """
    reader = _Reader(kind)
    try:
        result = reader.read(doc)
    except RecursionError:
        reader.problem("", "nested too deeply")
    if reader.problems:
        raise MalformedPolicyDocument(reader.problems)
    return result
