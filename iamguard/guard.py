"""``Guard``: what an app holds at run time: authenticate a token, authorize a request, fast.

Warm requests do no cryptography (verified tokens are cached by ``Tokens``) and no policy
evaluation (decisions are cached here). The decision cache is invisible: a cached decision is
the one evaluation would give now. Its key holds everything evaluation reads:

- the principal's view in the read model, by its generation: the read model replaces a view
  exactly when something it was built from changes (a policy, a membership, a boundary, a tag),
  so a model change can never be answered from the cache; the view and the session's policies
  come from one state of the model (``Authorizer.gather``), never a mixture of two;
- the session's policies (their text, as read now), the action and the resource;
- the values of exactly the request-context keys the principal's policies read: a decision
  that depends on ``aws:CurrentTime`` is keyed by the current second and so never outlives it,
  while one that reads no context is shared by every request.

Root and service sessions, resource policies and decisions that hit an error are not cached; a
cached decision keeps its request without the context (``Decision.detached``).
A store that cannot be read raises ``StoreError``: the adapters answer 503, never allow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final

from cachetools import LRUCache

from iamguard.audit import audit
from iamguard.authorizer import Authorizer
from iamguard.errors import NotAuthenticated
from iamguard.iam.base import Clock, utc_now
from iamguard.keystore import StoredKeyRing
from iamguard.policy import AccessRequest, Decision, Policy, PolicySet, evaluate
from iamguard.policy.evaluate import context_value
from iamguard.readmodel import PrincipalView
from iamguard.requestmemo import DEFAULT_REQUEST_MEMO, RequestMemo
from iamguard.sessions import ASSUMED_ROLE, USER, Session
from iamguard.stores.base import Store
from iamguard.sts import STS
from iamguard.tokens import KeyRing, Tokens

DEFAULT_DECISION_CACHE: Final = 20_000  # about 16 MB of decisions at most (~0.8 KB each)
# Keys whose value moves with the clock: computed per request, and only when a policy reads them.
_TIME_KEYS: Final = frozenset({"aws:currenttime", "aws:epochtime", "aws:multifactorauthage"})


def _time_key(key: str, now: datetime, session: Session) -> str | None:
    if key == "aws:currenttime":
        return now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if key == "aws:epochtime":
        return str(int(now.timestamp()))
    if session.mfa_authenticated_at is None:
        return None
    return str(max(0, int(now.timestamp()) - session.mfa_authenticated_at))


class Guard:
    """Authentication and authorization over one store, with their caches."""

    def __init__(
        self,
        store: Store,
        *,
        issuer: str = "iamguard",
        audience: str = "iamguard",
        key_ring: KeyRing | None = None,
        clock: Clock = utc_now,
        leeway: int = 30,
        decision_cache_size: int = DEFAULT_DECISION_CACHE,
        request_memo_size: int = DEFAULT_REQUEST_MEMO,
    ) -> None:
        self.store = store
        self.clock = clock
        self.authorizer = Authorizer(store, clock=clock)
        self.tokens = Tokens(
            key_ring or StoredKeyRing(store), issuer=issuer, audience=audience, leeway=leeway,
            clock=time.time if clock is utc_now else lambda: clock().timestamp(),
        )  # fmt: skip
        self.sts = STS(store, self.tokens, authorizer=self.authorizer, clock=clock)
        self._decisions: LRUCache[tuple[Any, ...], Decision] = LRUCache(decision_cache_size)
        self._read_memo: LRUCache[tuple[Any, ...], tuple[str, ...]] = LRUCache(10_000)
        self._layers: LRUCache[tuple[Any, ...], dict[str, Any]] = LRUCache(10_000)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.requests = RequestMemo(self, request_memo_size)  # the adapters' whole requests

    @property
    def hit_ratio(self) -> float:
        """The share of decisions answered from a cache, the decision cache or the adapters'
        request memo (0.0 before any)."""
        hits = self.hits + self.requests.hits
        total = hits + self.misses
        return hits / total if total else 0.0

    def authenticate(self, token: str) -> Session:
        """The session a bearer token proves; ``NotAuthenticated`` (401) otherwise, audited as
        ``authentication.failed`` with its code and reason (never the token)."""
        try:
            return self.sts.authenticate(token)
        except NotAuthenticated as e:
            audit("authentication.failed", code=e.code, reason=e.message)
            raise

    def authorize(
        self,
        session: Session,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        resource_policy: Policy | None = None,
    ) -> Decision:
        """May the session do ``action`` on ``resource`` now? Cached, and exact (see module).
        Every denial is an ``access.denied`` audit event."""
        decision = self._decide(session, action, resource, context, resource_policy)
        if not decision.allowed:
            audit(
                "access.denied", principal=session.principal, action=action, resource=resource,
                effect=decision.effect.value, reason=decision.reason.value,
            )  # fmt: skip
        return decision

    def _decide(
        self, session: Session, action: str, resource: str, context: Mapping[str, Any] | None,
        resource_policy: Policy | None,
    ) -> Decision:  # fmt: skip
        authorizer = self.authorizer
        if resource_policy is not None or session.principal_type not in (USER, ASSUMED_ROLE):
            return authorizer.authorize_session(
                session, action, resource, context, resource_policy=resource_policy
            )
        authorizer.read_model.refresh()
        view, session_policies = authorizer.gather(session)  # both from one model state
        if view is None:
            return authorizer.authorize_session(session, action, resource, context)
        texts = tuple(p.text for p in session_policies)
        read = self._read_keys(view, session_policies, texts)
        key = (
            session.principal, view.generation, texts, action.lower(), resource,
            self.context_values(read, session, view, context) if read else (),
        )  # fmt: skip
        with self._lock:
            cached = self._decisions.get(key)
            if cached is not None:
                self.hits += 1
                return cached
            self.misses += 1
        request = self._request(session, view, action, resource, context)
        decision = evaluate(
            request, identity=view.identity, boundaries=view.boundary, session=session_policies
        )
        if not decision.errors:
            with self._lock:
                self._decisions[key] = decision.detached()  # the context is most of its size
        return decision

    def reads_clock(self, session: Session) -> bool | None:
        """Whether the session's decisions read the clock (a time key); None when its
        decisions are not cached at all (root and service sessions, unknown principals)."""
        if session.principal_type not in (USER, ASSUMED_ROLE):
            return None
        view, policies = self.authorizer.gather(session)
        if view is None:
            return None
        read = self._read_keys(view, policies, tuple(p.text for p in policies))
        return not _TIME_KEYS.isdisjoint(read)

    def context_values(
        self, read: tuple[str, ...], session: Session, view: PrincipalView,
        context: Mapping[str, Any] | None,
    ) -> tuple[tuple[str, Any], ...]:  # fmt: skip
        """The values of the keys ``read`` (lower-cased, sorted) as the full request context
        would give them, computing only those: the request's keys win over the session's, which
        win over the principal's (memoized per view and session)."""
        given = {str(k).lower(): v for k, v in context.items()} if context else {}
        layers = (given, self._session_keys(session), self._principal_keys(session, view))
        now: datetime | None = None
        values = []
        value: object
        for key in read:
            for layer in layers:
                if key in layer:
                    try:
                        value = context_value(layer[key])
                    except Exception:  # a value no key can hold: evaluation meets it and denies
                        value = object()  # equal to nothing: never a cache hit
                    break
            else:
                if key in _TIME_KEYS:
                    now = now or self.clock().astimezone(timezone.utc)
                    value = _time_key(key, now, session)
                else:
                    value = None
            values.append((key, value))
        return tuple(values)

    def _memo(self, cache: LRUCache[tuple[Any, ...], Any], key: tuple[Any, ...]) -> Any:
        """A memo's entry or None, read under the lock: an LRU read reorders the entries, which
        must not race with another thread's eviction."""
        with self._lock:
            return cache.get(key)

    def _session_keys(self, session: Session) -> dict[str, Any]:
        """The session's own keys but for the MFA age, which moves with time (lower-cased)."""
        memo_key = ("session", session.token_id)
        keys = self._memo(self._layers, memo_key)
        if keys is None:
            keys = {
                k.lower(): v for k, v in session.context(0).items()
                if k != "aws:MultiFactorAuthAge"
            }  # fmt: skip
            with self._lock:
                self._layers[memo_key] = keys
        return keys

    def _principal_keys(self, session: Session, view: PrincipalView) -> dict[str, Any]:
        """The keys the principal sets (user name, ids, tags), but for the time (lower-cased)."""
        memo_key = ("principal", view.generation, session.principal)
        keys = self._memo(self._layers, memo_key)
        if keys is None:
            full = self.authorizer.context(session.principal, view, None)
            keys = {k.lower(): v for k, v in full.items() if k.lower() not in _TIME_KEYS}
            with self._lock:
                self._layers[memo_key] = keys
        return keys

    def _request(
        self, session: Session, view: PrincipalView, action: str, resource: str,
        context: Mapping[str, Any] | None,
    ) -> AccessRequest:  # fmt: skip
        """The request as evaluation sees it: the context with every global key filled in."""
        now = int(self.clock().timestamp())
        given = {**session.context(now), **(context or {})}
        full = self.authorizer.context(session.principal, view, given)
        return AccessRequest(session.principal, action, resource, full)

    def _read_keys(
        self, view: PrincipalView, session_policies: PolicySet, texts: tuple[str, ...]
    ) -> tuple[str, ...]:
        """The context keys the principal's policies read, sorted; computed once per view."""
        memo_key = (view.generation, texts)
        keys = self._memo(self._read_memo, memo_key)
        if keys is None:
            read = (
                view.identity.context_keys | view.boundary.context_keys
                | session_policies.context_keys
            )  # fmt: skip
            keys = tuple(sorted(read))
            with self._lock:
                self._read_memo[memo_key] = keys
        return keys
