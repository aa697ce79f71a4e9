"""Secrets at rest: passwords hashed with argon2id; random secrets (access keys, service
credentials) with a salted SHA-256, which is enough for 240 random bits. Both compared in
constant time."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from iamguard.errors import PasswordPolicyViolation
from iamguard.model import PasswordPolicy

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters

SYMBOLS = "!@#$%^&*()_+-=[]{}|'"  # the symbols AWS's password policy counts
MAX_PASSWORD_LENGTH = 128


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; the encoded form carries its parameters)."""
    return _HASHER.hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """Does ``password`` match the hash? Constant time in the password; never raises."""
    try:
        return _HASHER.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_password_hash() -> str:
    """A hash to check when there is no real one, so that an unknown user costs as much as a
    wrong password and the two cannot be told apart by timing (made on first use: hashing
    takes a good part of a second, which every process would otherwise pay at import)."""
    return hash_password(secrets.token_urlsafe(16))


def hash_secret(secret: str) -> str:
    """``salt$sha256(salt + secret)`` for a high-entropy random secret."""
    salt = secrets.token_hex(16)
    return f"{salt}${hashlib.sha256((salt + secret).encode()).hexdigest()}"


def verify_secret(encoded: str, secret: str) -> bool:
    """Does ``secret`` match ``hash_secret``'s output? Constant time."""
    salt, _, digest = encoded.partition("$")
    candidate = hashlib.sha256((salt + secret).encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


def check_password(password: str, policy: PasswordPolicy, *, user: str = "") -> None:
    """Raise ``PasswordPolicyViolation`` naming every rule ``password`` breaks."""
    problems = []
    if len(password) < policy.minimum_password_length:
        problems.append(f"at least {policy.minimum_password_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"at most {MAX_PASSWORD_LENGTH} characters")
    classes = {
        "an uppercase letter": any(c in string.ascii_uppercase for c in password),
        "a lowercase letter": any(c in string.ascii_lowercase for c in password),
        "a number": any(c in string.digits for c in password),
        "a symbol": any(c in SYMBOLS for c in password),
    }
    if policy.is_default:
        if sum(classes.values()) < 3:
            problems.append("three of: uppercase letters, lowercase letters, numbers, symbols")
    else:
        required = {
            "an uppercase letter": policy.require_uppercase_characters,
            "a lowercase letter": policy.require_lowercase_characters,
            "a number": policy.require_numbers,
            "a symbol": policy.require_symbols,
        }
        problems.extend(name for name, needed in required.items() if needed and not classes[name])
    if user and password.lower() == user.lower():
        problems.append("not the user's name")
    if problems:
        raise PasswordPolicyViolation(
            "password does not meet the account password policy: it needs " + "; ".join(problems)
        )
