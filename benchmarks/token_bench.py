"""Session tokens: issue and verify per algorithm, cold (signature checked) and warm (cached).

    .venv/bin/python benchmarks/token_bench.py [--quick]

Targets: issuing ≤ 100 µs (the default algorithm, EdDSA); a warm verification does no
cryptography (counted: the number of signature checks stays at one per distinct token).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jwt

from iamguard.tokens import ALGORITHMS, KeyRing, SigningKey, Tokens

SUBJECT = "arn:iamguard:sts::123456789012:assumed-role/ImageReader/batch"
CLAIMS = {
    "principal_type": "AssumedRole", "account": "123456789012", "name": "ImageReader",
    "userid": "AROAEXAMPLE000000000:batch", "session_name": "batch", "chain_depth": 1,
    "session_tags": {"team": "images"}, "iat_ms": 0,
}  # fmt: skip


def median_us(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median and p90 of ``fn``'s duration, in µs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - start) / 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeat = 300 if args.quick else 3000
    checks = {"count": 0}
    real_decode = jwt.decode

    def counting_decode(*a: Any, **k: Any) -> Any:
        checks["count"] += 1
        return real_decode(*a, **k)

    jwt.decode = counting_decode  # type: ignore[assignment]
    print("| algorithm | issue µs (median / p90) | cold verify µs | warm verify µs | token bytes |")
    print("|-----------|------------------------:|---------------:|---------------:|------------:|")
    verdicts = []
    for algorithm in ALGORITHMS:
        tokens = Tokens(KeyRing([SigningKey.generate(algorithm)]), issuer="iamguard",
                        audience="images")  # fmt: skip
        issue = median_us(lambda t=tokens: t.issue(SUBJECT, 900, CLAIMS), repeat)
        fresh = [tokens.issue(SUBJECT, 900, CLAIMS)[0] for _ in range(repeat)]
        it = iter(fresh)
        cold = median_us(lambda t=tokens, i=it: t.verify(next(i)), repeat)  # each token new
        token = fresh[0]
        before = checks["count"]
        warm = median_us(lambda t=tokens, tok=token: t.verify(tok), repeat)
        crypto = checks["count"] - before
        print(f"| {algorithm:9} | {issue[0]:8.1f} / {issue[1]:8.1f} | {cold[0]:14.1f} | "
              f"{warm[0]:14.2f} | {len(token):11} |")  # fmt: skip
        if algorithm == "EdDSA":
            verdicts.append(("issue ≤ 100 µs (EdDSA)", issue[0] <= 100))
        verdicts.append((f"warm verification does no cryptography ({algorithm})", crypto == 0))
    print()
    for label, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}: {label}")


if __name__ == "__main__":
    main()
