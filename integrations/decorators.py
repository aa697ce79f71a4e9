"""``@authorize``: a permission check on a plain function, for the service layer.

::

    @authorize("orders:CancelOrder", resource="arn:iamguard:orders::{account}:order/{order_id}")
    def cancel_order(order_id: str, reason: str = "") -> None: ...

    @authorize("orders:GetOrder", resource=lambda order_id, **_: order_arn(order_id))
    async def get_order(order_id: str) -> Order: ...

The caller is the ``Session`` in ``current_session`` and the decider the ``Guard`` in
``current_guard`` (set by the Starlette and Flask adapters for an allowed request, or by
``bind``). Every call is decided before the function's body runs:

- no session: ``NotAuthenticated`` (401 at the HTTP layer); a session but no guard:
  ``RuntimeError`` (a wiring mistake, never an allow);
- the resource is a template over the function's arguments and ``{account}``,
  ``{principal}``, ``{username}``, filled like a route's (``Permission.resource_for``: values
  percent-encoded, an argument wins over the principal's value of the same name, an argument
  that is ``None`` or empty denies), or a callable given the bound arguments (defaults
  applied) as keyword arguments, returning the ARN;
- ``context`` is a callable given the same keyword arguments, returning extra condition keys
  (never ``aws:`` ones: those come from the session and the guard);
- a denial raises ``AccessDenied`` with AWS's sentence (403 at the HTTP layer).

Sync and async functions are both supported (an async one is decided when it is awaited); on
a method, ``self`` is one more argument. Place ``@authorize`` below ``@classmethod`` or
``@staticmethod``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from iamguard.errors import AccessDenied, InvalidInput, NotAuthenticated

from ._context import current_guard, current_session
from ._http import PRINCIPAL_PLACEHOLDERS, Permission

__all__ = ["authorize"]

F = TypeVar("F", bound=Callable[..., Any])
Resource = str | Callable[..., str]
ContextFunction = Callable[..., Mapping[str, Any]]


@dataclass(frozen=True)
class _Requirement:
    """What one decorated function needs, compiled when it is decorated."""

    permission: Permission  # the action, and the resource template when it is a string
    resource: Callable[..., str] | None  # a callable resource, else None (use the template)
    context: ContextFunction | None
    signature: inspect.Signature

    def check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Return when the current caller may make this call; raise otherwise."""
        session = current_session.get()
        if session is None:
            raise NotAuthenticated("no authenticated session")
        guard = current_guard.get()
        if guard is None:
            raise RuntimeError(
                f"permission `{self.permission.action}`: a session is bound but no guard: "
                "bind both (`bind(session, guard)`, or an iamguard adapter)"
            )
        arguments = _arguments(self.signature, args, kwargs)
        if self.resource is None:
            filled = {name: "" if value is None else value for name, value in arguments.items()}
            resource = self.permission.resource_for(filled, session)
        else:
            resource = self.resource(**arguments)
            if not isinstance(resource, str) or not resource:
                raise TypeError(
                    f"permission `{self.permission.action}`: the resource callable returned "
                    f"`{resource!r}`, not an ARN"
                )
        context = None
        if self.context is not None:
            context = dict(self.context(**arguments))
            if any(not isinstance(k, str) or k.lower().startswith("aws:") for k in context):
                raise ValueError("a context provider may not set `aws:` keys")
        decision = guard.authorize(session, self.permission.action, resource, context)
        if not decision.allowed:
            raise AccessDenied(decision.message())


def _arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by name, defaults applied; ``**kwargs`` flattened into the rest."""
    bound = signature.bind(*args, **kwargs)  # a bad call is a TypeError, as without us
    bound.apply_defaults()
    arguments: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(value)
        else:
            arguments[name] = value
    return arguments


def _check_template(
    permission: Permission, function: Callable[..., Any], signature: inspect.Signature
) -> None:
    """``InvalidInput`` for a placeholder that neither an argument nor the principal fills."""
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return  # any name may come through **kwargs: a missing value denies at call time
    names = {p.name for p in parameters}
    for placeholder in permission.placeholders:
        if placeholder not in names and placeholder not in PRINCIPAL_PLACEHOLDERS:
            raise InvalidInput(
                f"permission `{permission.action}`: resource template `{permission.resource}`: "
                f"`{{{placeholder}}}` is neither a parameter of `{function.__qualname__}` nor "
                "`{account}`, `{principal}` or `{username}`"
            )


def authorize(
    action: str, resource: Resource = "*", *, context: ContextFunction | None = None
) -> Callable[[F], F]:
    """Decide every call of the decorated function before its body runs (see the module
    docstring). ``InvalidInput`` at decoration for a bad action or template."""
    template = resource if isinstance(resource, str) else "*"
    permission = Permission(action, template)  # validates the action, compiles the template
    if not isinstance(resource, str) and not callable(resource):
        raise TypeError(f"permission `{action}`: `resource` is a template or a callable")

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        if isinstance(resource, str):
            _check_template(permission, function, signature)
        callable_resource = None if isinstance(resource, str) else resource
        requirement = _Requirement(permission, callable_resource, context, signature)
        if inspect.iscoroutinefunction(function):
            return cast("F", _async_wrapper(function, requirement))
        return cast("F", _sync_wrapper(function, requirement))

    return decorate


def _sync_wrapper(function: Callable[..., Any], requirement: _Requirement) -> Callable[..., Any]:
    @functools.wraps(function)
    def authorized(*args: Any, **kwargs: Any) -> Any:
        requirement.check(args, kwargs)
        return function(*args, **kwargs)

    return authorized


def _async_wrapper(function: Callable[..., Any], requirement: _Requirement) -> Callable[..., Any]:
    @functools.wraps(function)
    async def authorized(*args: Any, **kwargs: Any) -> Any:
        requirement.check(args, kwargs)
        return await function(*args, **kwargs)

    return authorized
