"""Session tokens: JWTs signed by a key ring, verified with every check pinned.

Signing uses the ring's newest key; each key has its own algorithm (EdDSA with Ed25519 by
default; ES256, RS256 or HS256 on request), and the algorithm a token is checked with is always
the key's, never the token's. Old keys keep verifying after a rotation until ``retire`` drops
them (do so once the last token they signed has expired). ``jwks()`` publishes the public keys.

Verification refuses, before any cryptography: a token over ``MAX_TOKEN_BYTES``; a header that is
not JSON, repeats a key, lacks ``kid`` or names an unknown one, has another ``typ`` or ``alg``
than expected, or carries ``crit`` (``jku``, ``x5u`` and ``jwk`` are ignored, never fetched).
Then the signature, and every claim: ``iss``, ``aud``, ``sub``, ``iat``, ``nbf``, ``exp``, ``jti``
required, ``iss`` and ``aud`` exact, times with at most ``leeway`` seconds of slack (≤ 60), no
claim given twice. A verified token is cached (bounded, never past its expiry), so a warm
request does no cryptography.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jwt
from cachetools import TLRUCache
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from iamguard.errors import ExpiredToken, InvalidClientTokenId, InvalidInput

TOKEN_TYPE: Final = "iamguard-session+jwt"  # noqa: S105 -- the header's explicit type (RFC 8725)
ALGORITHMS: Final = ("EdDSA", "ES256", "RS256", "HS256")
MAX_TOKEN_BYTES: Final = 8192
MAX_LEEWAY: Final = 60
MIN_HMAC_KEY_BYTES: Final = 32
REQUIRED_CLAIMS: Final = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti")
_KID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Three base64url segments and nothing else: no padding, no second spelling of one token.
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_MAX_TIME: Final = 2**40  # epoch seconds: far beyond any real expiry, far within a float
_INVALID: Final = "the security token included in the request is invalid"


@dataclass(frozen=True)
class SigningKey:
    """One key of the ring: its id, its algorithm, and the key material (for HS256 the same
    secret signs and verifies)."""

    kid: str
    algorithm: str
    private: Any = field(repr=False)
    public: Any = field(repr=False)

    @classmethod
    def generate(cls, algorithm: str = "EdDSA", kid: str | None = None) -> SigningKey:
        """A new random key for ``algorithm``."""
        kid = kid or secrets.token_urlsafe(12)
        if algorithm == "EdDSA":
            private: Any = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "RS256":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "HS256":
            secret = secrets.token_bytes(MIN_HMAC_KEY_BYTES)
            return cls(kid, algorithm, secret, secret)
        else:
            raise InvalidInput(f"algorithm `{algorithm}` is not one of {', '.join(ALGORITHMS)}")
        return cls(kid, algorithm, private, private.public_key())

    @classmethod
    def hmac(cls, secret: bytes, kid: str) -> SigningKey:
        """An HS256 key from a shared secret of at least 32 random bytes."""
        if not isinstance(secret, bytes) or len(secret) < MIN_HMAC_KEY_BYTES:
            raise InvalidInput(
                f"an HS256 key needs at least {MIN_HMAC_KEY_BYTES} random bytes: refusing to start"
            )
        return cls(kid, "HS256", secret, secret)

    def __post_init__(self) -> None:
        if not _KID.fullmatch(self.kid):
            raise InvalidInput(f"key id `{self.kid}` must be 1-64 of A-Z a-z 0-9 _ -")
        if self.algorithm not in ALGORITHMS:
            raise InvalidInput(
                f"algorithm `{self.algorithm}` is not one of {', '.join(ALGORITHMS)}"
            )
        if self.algorithm == "HS256" and (
            not isinstance(self.private, bytes) or len(self.private) < MIN_HMAC_KEY_BYTES
        ):
            raise InvalidInput(f"an HS256 key needs at least {MIN_HMAC_KEY_BYTES} random bytes")

    def public_jwk(self) -> dict[str, Any] | None:
        """The public key as a JWK (None for HS256: a shared secret is never published)."""
        if self.algorithm == "HS256":
            return None
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.public))
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


class KeyRing:
    """Signing keys: the newest signs, every one listed verifies. Thread-safe."""

    def __init__(self, keys: list[SigningKey] | None = None) -> None:
        self._keys: dict[str, SigningKey] = {}
        self._lock = threading.Lock()
        #: Grows with every change of the ring's keys: what was checked against one generation
        #: holds while the generation does.
        self.generation = 0
        for key in keys or [SigningKey.generate()]:
            self.add(key)

    def add(self, key: SigningKey) -> None:
        """Add a key; it signs from now on."""
        with self._lock:
            if key.kid in self._keys:
                raise InvalidInput(f"key id `{key.kid}` is in the ring already")
            self._keys[key.kid] = key
            self.generation += 1

    def rotate(self, algorithm: str | None = None) -> SigningKey:
        """Add a new key (same algorithm as the current one unless given) that signs from now on;
        the others keep verifying until retired."""
        key = SigningKey.generate(algorithm or self.current.algorithm)
        self.add(key)
        return key

    def retire(self, kid: str) -> None:
        """Stop accepting tokens signed with ``kid`` (never the current key), cached ones too."""
        with self._lock:
            if kid not in self._keys:
                raise InvalidInput(f"key id `{kid}` is not in the ring")
            if kid == next(reversed(self._keys)):
                raise InvalidInput("the current signing key cannot be retired: rotate first")
            del self._keys[kid]
            self.generation += 1

    @property
    def current(self) -> SigningKey:
        with self._lock:
            return self._keys[next(reversed(self._keys))]

    def get(self, kid: str) -> SigningKey | None:
        with self._lock:
            return self._keys.get(kid)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document: every public key that verifies."""
        with self._lock:
            keys = list(self._keys.values())
        return {"keys": [jwk for k in keys if (jwk := k.public_jwk()) is not None]}


def _copy(claims: dict[str, Any]) -> dict[str, Any]:
    """Claims a caller may change without changing the cache (values nest one level at most)."""
    return {k: v.copy() if isinstance(v, (dict, list)) else v for k, v in claims.items()}


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _strict_json(raw: bytes, what: str) -> dict[str, Any]:
    """JSON object with no repeated key; ``InvalidClientTokenId`` otherwise."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise InvalidClientTokenId(f"the security token's {what} repeats a key")
        return dict(items)

    try:
        value = json.loads(raw, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        raise InvalidClientTokenId(f"the security token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidClientTokenId(f"the security token's {what} is not a JSON object")
    return value


class Tokens:
    """Issues and verifies session tokens for one issuer and audience."""

    def __init__(
        self,
        ring: KeyRing,
        *,
        issuer: str,
        audience: str,
        leeway: int = 30,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= leeway <= MAX_LEEWAY:
            raise InvalidInput(f"leeway must be 0-{MAX_LEEWAY} seconds")
        self.ring = ring
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.clock = clock
        self._cache_lock = threading.Lock()
        # A verified token and its key id, kept no longer than it is valid (nor than an hour).
        self._verified: TLRUCache[str, tuple[str, dict[str, Any]]] = TLRUCache(
            maxsize=cache_size,
            ttu=lambda _key, entry, now: min(float(entry[1]["exp"]), now + 3600),
            timer=clock,
        )

    def issue(self, subject: str, lifetime: int, claims: Mapping[str, Any]) -> tuple[str, dict]:
        """A signed token for ``subject`` valid ``lifetime`` seconds from now, carrying
        ``claims``; returns the token and its full claims (with ``jti`` and the times)."""
        if not isinstance(subject, str) or not subject:
            raise InvalidInput("a token needs a subject")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 0 < lifetime <= 2**31:
            raise InvalidInput(f"token lifetime `{lifetime}` must be a positive number of seconds")
        now = int(self.clock())
        full = {
            **claims,
            "iss": self.issuer, "aud": self.audience, "sub": subject, "iat": now, "nbf": now,
            "exp": now + lifetime, "jti": secrets.token_urlsafe(16),
        }  # fmt: skip
        key = self.ring.current
        headers = {"kid": key.kid, "typ": TOKEN_TYPE}
        token = jwt.encode(full, key.private, algorithm=key.algorithm, headers=headers)
        return token, full

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token (a copy); ``InvalidClientTokenId`` or ``ExpiredToken``."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
            raise InvalidClientTokenId(_INVALID)
        # Keyed by the token itself: only the very string that was verified can hit.
        with self._cache_lock:
            cached = self._verified.get(token)
        if cached is not None and self.ring.get(cached[0]) is not None:  # its key not retired
            self._check_times(cached[1])
            return _copy(cached[1])
        if not _COMPACT_JWS.fullmatch(token):
            raise InvalidClientTokenId(_INVALID)
        key = self._key_for(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.public, algorithms=[key.algorithm], audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": list(REQUIRED_CLAIMS), "strict_aud": True,
                    # times are checked below, against this object's clock
                    "verify_exp": False, "verify_nbf": False, "verify_iat": False,
                },
            )  # fmt: skip
        except jwt.PyJWTError:
            raise InvalidClientTokenId(_INVALID) from None
        _strict_json(_b64decode(token.split(".")[1]), "payload")  # no claim given twice
        for name in ("iat", "nbf", "exp"):
            value = claims[name]
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not (0 <= value < _MAX_TIME)
            ):
                raise InvalidClientTokenId(_INVALID)
        self._check_times(claims)
        with self._cache_lock:
            self._verified[token] = (key.kid, claims)
        return _copy(claims)

    def validity(self, token: str) -> tuple[int, float, float] | None:
        """For a token verified by this object, cached, and whose key is in the ring: the ring's
        generation and the window ``[not_before, expires)`` in which ``verify`` accepts the
        token (leeway included). While the ring keeps that generation, its key stays."""
        generation = self.ring.generation
        with self._cache_lock:
            cached = self._verified.get(token)
        if cached is None or self.ring.get(cached[0]) is None:
            return None
        claims = cached[1]
        not_before = max(float(claims["nbf"]), float(claims["iat"])) - self.leeway
        return generation, not_before, float(claims["exp"]) + self.leeway

    def _key_for(self, token: str) -> SigningKey:
        """The ring's key for this token, after every header check."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidClientTokenId("the security token is not a signed JWT")
        try:
            header = _strict_json(_b64decode(parts[0]), "header")
        except (binascii.Error, ValueError):
            raise InvalidClientTokenId("the security token's header is not base64url") from None
        if "crit" in header:
            raise InvalidClientTokenId("the security token has critical header parameters")
        if header.get("typ") != TOKEN_TYPE:
            raise InvalidClientTokenId("the security token is not an iamguard session token")
        kid = header.get("kid")
        key = self.ring.get(kid) if isinstance(kid, str) and _KID.fullmatch(kid) else None
        if key is None:
            raise InvalidClientTokenId("the security token's key is unknown")
        if header.get("alg") != key.algorithm:  # the key's algorithm, never the token's choice
            raise InvalidClientTokenId("the security token's algorithm does not match its key")
        return key

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        """Expiry, not-before and issue time against this object's clock, with the leeway."""
        now = self.clock()
        if now >= float(claims["exp"]) + self.leeway:
            raise ExpiredToken("the security token included in the request is expired")
        if now < float(claims["nbf"]) - self.leeway or now < float(claims["iat"]) - self.leeway:
            raise InvalidClientTokenId("the security token is not yet valid")
