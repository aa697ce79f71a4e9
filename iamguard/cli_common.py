"""What every command of the command line shares: the store and account a command works on,
AWS errors as exit status 1, tables and ``--json`` output, and option parsers.

Exit statuses: 0 success; 1 a negative answer (an AWS error such as ``NoSuchEntity``, an invalid
policy, a denied request); 2 a usage error (a bad option, a missing file, no store).
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import string
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from iamguard import Decision, IAMGuardError, InvalidInput, MalformedPolicyDocument
from iamguard.errors import NoSuchEntity
from iamguard.iam import IAM, get_account, list_accounts
from iamguard.model import AttachedPolicy, Tag
from iamguard.stores import open_store
from iamguard.stores.base import Store

EXIT_NO = 1  # the answer is no: an AWS error, an invalid policy, a denied request
EXIT_USAGE = click.UsageError.exit_code  # 2
DEFAULT_STORE = "sqlite:///iamguard.db"
STORE_ENV = "IAMGUARD_STORE"

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


# -- errors ----------------------------------------------------------------------------------


class DocumentProblems(MalformedPolicyDocument):
    """A malformed policy document read from ``source`` (a file): printed one problem a line."""

    def __init__(self, error: MalformedPolicyDocument, source: str) -> None:
        super().__init__(error.problems)
        self.source = source


@contextmanager
def document_from(source: str) -> Iterator[None]:
    """Name ``source`` in a ``MalformedPolicyDocument`` raised within."""
    try:
        yield
    except MalformedPolicyDocument as e:
        raise DocumentProblems(e, source) from None


def error_lines(error: IAMGuardError) -> list[str]:
    """``Error (CODE): MESSAGE``; for a policy file, one line per problem: ``FILE: PATH: ...``."""
    if isinstance(error, DocumentProblems):
        return [f"Error ({error.code}): {error.source}: {p}" for p in error.problems]
    return [f"Error ({error.code}): {error.message}"]


class RootGroup(click.Group):
    """The root group: an ``IAMGuardError`` anywhere below prints ``Error (CODE): MESSAGE`` on
    stderr, without a traceback, and exits 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except IAMGuardError as e:
            click.echo("\n".join(error_lines(e)), err=True)
            ctx.exit(EXIT_NO)


# -- the store and the account ---------------------------------------------------------------


def display_url(url: str) -> str:
    """``url`` with any password hidden, fit to print."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///path`` URL names (None for other URLs and in-memory SQLite)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.partition("+")[0].lower() != "sqlite":
        return None
    path = rest[1:].partition("?")[0] if rest.startswith("/") else ""
    return Path(path) if path and path != ":memory:" else None


def store_accounts(store: Store) -> list[str]:
    """The ids of the accounts in ``store``."""
    return [account.account_id for account in list_accounts(store)]


class Target:
    """The store a command works on (opened on first use, closed with the command) and, for
    commands that need one, the account."""

    def __init__(self, url: str, account: str | None, *, must_exist: bool) -> None:
        self.url = url
        self.shown_url = display_url(url)
        self._account = account
        self._must_exist = must_exist
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            path = sqlite_file(self.url)
            if self._must_exist and path is not None and not path.exists():
                raise click.UsageError(
                    f"store `{self.shown_url}` does not exist: create it with `iamguard init` or "
                    f"`iamguard import FILE`, or name another with --store or ${STORE_ENV}"
                )
            try:
                self._store = open_store(self.url)
            except InvalidInput as e:
                raise click.BadParameter(e.message, param_hint="'--store'") from None
        return self._store

    @property
    def account(self) -> str:
        """The account given by --account (which must exist), else the store's only account."""
        if self._account is not None:
            get_account(self.store, self._account)  # NoSuchEntity: exit 1
            return self._account
        found = store_accounts(self.store)
        if not found:
            raise click.UsageError(
                f"store `{self.shown_url}` has no account: create one with `iamguard init`"
            )
        if len(found) > 1:
            names = ", ".join(f"`{a}`" for a in found)
            raise click.UsageError(
                f"store `{self.shown_url}` holds {len(found)} accounts ({names}): give --account"
            )
        self._account = found[0]
        return self._account

    def iam(self) -> IAM:
        """The management API for the account."""
        return IAM(self.store, self.account)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def on_store(*, account: bool = True, must_exist: bool = True) -> Callable[[F], F]:
    """Add ``--store`` (and ``--account``) to a command; it receives a ``target: Target``.

    ``must_exist``: a SQLite file that is not there is a usage error rather than a new store.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, store_url: str, store_account: str | None = None, **kw: Any) -> Any:
            target = Target(store_url, store_account, must_exist=must_exist)
            click.get_current_context().call_on_close(target.close)
            return fn(*args, target=target, **kw)

        if account:
            wrapper = click.option(
                "--account", "store_account", metavar="ID",
                help="The account (12 digits). Default: the store's only account.",
            )(wrapper)  # fmt: skip
        wrapper = click.option(
            "--store", "store_url", metavar="URL", envvar=STORE_ENV, default=DEFAULT_STORE,
            show_default=True, show_envvar=True,
            help="The store: sqlite:///PATH, postgresql://USER@HOST/DB or memory://.",
        )(wrapper)  # fmt: skip
        return wrapper  # type: ignore[return-value]

    return decorate


# -- output ----------------------------------------------------------------------------------


def json_option(fn: F) -> F:
    """``--json``: print JSON for machines instead of text for people."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def echo_created(kind: str, name: str, arn: str, entity: dict[str, Any], *, as_json: bool) -> None:
    """A new entity: ``{"Kind": entity}`` with --json, else ``Created kind NAME: ARN``."""
    if as_json:
        echo_json({kind.capitalize(): entity})
    else:
        click.echo(f"Created {kind} {name}: {arn}")


def echo_list(
    items: Sequence[T], key: str, to_json: Callable[[T], dict[str, Any]],
    headers: Sequence[str], row: Callable[[T], Sequence[str]], *, as_json: bool,
) -> None:  # fmt: skip
    """Entities: ``{key: [to_json(item), ...]}`` with --json, else a table of ``row(item)``."""
    if as_json:
        echo_json({key: [to_json(item) for item in items]})
    else:
        click.echo(table(headers, [row(item) for item in items]))


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Aligned columns under upper-case headers, two spaces apart."""
    lines = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def fields(pairs: Iterable[tuple[str, str]]) -> str:
    """``Key:   value`` lines, the values aligned."""
    pairs = list(pairs)
    width = max(len(key) for key, _ in pairs) + 1
    return "\n".join(f"{key + ':':<{width}} {value}".rstrip() for key, value in pairs)


def listed(values: Iterable[str]) -> str:
    """Values for one field: comma-separated, ``-`` for none."""
    return ", ".join(values) or "-"


def document_block(title: str, text: str) -> str:
    """A policy document under a title, pretty-printed and indented."""
    pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return f"{title}:\n" + "\n".join(f"  {line}" for line in pretty.splitlines())


def tags_text(tags: Iterable[Tag]) -> str:
    return listed(f"{t.key}={t.value}" for t in tags)


def tags_json(tags: Iterable[Tag]) -> list[dict[str, str]]:
    return [{"Key": t.key, "Value": t.value} for t in tags]


def warn_once(what: str) -> None:
    """The warning that goes with a secret shown this one time (on stderr)."""
    click.echo(
        f"Warning: {what} shown only this once: iamguard keeps only a hash and cannot show it "
        "again. Store it safely now.",
        err=True,
    )


def boundary_json(entity: dict[str, Any], boundary: str | None) -> dict[str, Any]:
    """``entity`` with AWS's ``PermissionsBoundary`` field when it has a boundary."""
    if boundary:
        entity["PermissionsBoundary"] = {
            "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
            "PermissionsBoundaryArn": boundary,
        }
    return entity


def attached_json(attached: Iterable[AttachedPolicy]) -> list[dict[str, str]]:
    return [{"PolicyName": p.policy_name, "PolicyArn": p.policy_arn} for p in attached]


def decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "effect": decision.effect.value,
        "allowed": decision.allowed,
        "message": decision.message(),
        "statements": [
            {"kind": s.kind, "policy": s.policy, "statement": s.statement, "effect": s.effect}
            for s in decision.statements
        ],
        "errors": list(decision.errors),
    }


def exit_with_decision(decision: Decision, as_json: bool) -> NoReturn:
    """Print ``decision`` (``--json``: as JSON) and exit 0 if it allows, else 1."""
    if as_json:
        echo_json(decision_json(decision))
    else:
        click.echo(decision.explain())
    click.get_current_context().exit(0 if decision.allowed else EXIT_NO)


# -- input -----------------------------------------------------------------------------------


def parse_context(
    ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]
) -> dict[str, str | list[str]]:
    """``KEY=VALUE`` pairs as a request context; a key given several times becomes a list.

    Keys are case-insensitive, as in AWS: ``aws:TagKeys`` and ``aws:tagkeys`` are one key.
    """
    values: dict[str, tuple[str, list[str]]] = {}  # lower-cased key -> (first spelling, values)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"`{pair}` is not KEY=VALUE", ctx, param)
        values.setdefault(key.lower(), (key, []))[1].append(value)
    return {key: found[0] if len(found) == 1 else found for key, found in values.values()}


def parse_tags(
    ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]
) -> list[dict[str, str]]:
    """``KEY=VALUE`` pairs as tags (the API checks keys and values)."""
    tags = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"`{pair}` is not KEY=VALUE", ctx, param)
        tags.append({"Key": key, "Value": value})
    return tags


def tag_option(fn: F) -> F:
    return click.option(
        "--tag", "tags", multiple=True, metavar="KEY=VALUE", callback=parse_tags,
        help="A tag (repeatable).",
    )(fn)  # fmt: skip


def request_options(fn: F) -> F:
    """``--action``, ``--resource`` and ``--context``: the request to decide."""
    fn = click.option(
        "--context", multiple=True, metavar="KEY=VALUE", callback=parse_context,
        help="A request-context key (repeatable; repeat a key to give it several values).",
    )(fn)  # fmt: skip
    fn = click.option("--resource", required=True, metavar="ARN", help="The resource's ARN.")(fn)
    return click.option(
        "--action", required=True, metavar="ACTION", help="The action, e.g. images:GetImage."
    )(fn)


DOCUMENT_FILE = click.Path(exists=True, dir_okay=False, readable=True, allow_dash=True)


def read_document(path: str) -> str:
    """The text of a policy document file (``-``: standard input)."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise click.UsageError(f"cannot read `{path}`: {reason}") from None


def policy_arn(iam: IAM, policy: str) -> str:
    """A managed policy's ARN, given its ARN or its name in the account."""
    if policy.startswith("arn:"):
        return policy
    for managed in iam.list_policies():
        if managed.name.lower() == policy.lower():
            return managed.arn
    raise NoSuchEntity(f"policy `{policy}` cannot be found in account `{iam.account}`")


def new_password() -> str:
    """A random 24-character password with every character class AWS's policies count."""
    symbols = "_+-=@%^*"  # in AWS's symbol set, and harmless when pasted into a shell
    alphabet = string.ascii_letters + string.digits + symbols
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits, symbols)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(24))
        if all(any(c in chars for c in password) for chars in classes):
            return password
