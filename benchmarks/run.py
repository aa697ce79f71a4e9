"""Run the iamguard benchmark suite and print medians: ``.venv/bin/python benchmarks/run.py``.

Options: ``--quick`` for a short smoke run, ``--json FILE`` to write every figure, ``--seed N``.
See benchmarks/README.md for what each figure measures.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from types import ModuleType

from model import ACCOUNT, peer_model, peer_queries
from peers import FnmatchBaseline, peer_jobs
from timing import Stats, fmt_us, sample, sample_interleaved, table

ROOT = Path(__file__).resolve().parent.parent
SIZES = (100, 10_000, 100_000)
VARIANTS = 40  # copies of each figure-1 query kind, with other resource ids and addresses
TARGET_US = 5.0
FLAT_RATIO = 1.25


def section(title: str) -> None:
    """Print a section heading (flushed, so progress shows while the suite runs)."""
    print(f"\n## {title}\n", flush=True)


def load_engine() -> ModuleType | None:
    """The iamguard side of the suite, or None (with a note) while iamguard cannot be imported."""
    sys.path.insert(1, str(ROOT))
    try:
        import iamguard_bench
    except ImportError as exc:
        print(f"NOTE: iamguard is not importable ({exc}); only the peers and the baseline run.")
        return None
    return iamguard_bench


def run_scaling(bench: ModuleType, seed: int, budget_s: float) -> list[dict]:
    """Figure 1."""
    section("1. Decision latency vs model size (target principal: 10 policies, 100 statements)")
    rows = [bench.scaling_figure(size, seed, VARIANTS, budget_s) for size in SIZES]
    base = rows[0]["stats"].median_us
    print(
        table(
            [
                "statements in model",
                "principals",
                "compile s",
                "median µs",
                "p90 µs",
                "vs 100-stmt model",
                "naive fnmatch loop µs",
            ],
            [
                [
                    f"{r['statements']:,}",
                    f"{r['principals']:,}",
                    f"{r['compile_s']:.2f}",
                    fmt_us(r["stats"].median_us),
                    fmt_us(r["stats"].p90_us),
                    f"{r['stats'].median_us / base:.2f}x",
                    fmt_us(r["baseline"].median_us),
                ]
                for r in rows
            ],
        )
    )
    print(
        f"\n{rows[0]['queries']} distinct requests ({rows[0]['queries'] // VARIANTS} kinds x "
        f"{VARIANTS} variants): allowed, explicitly and implicitly denied; StringEquals on a "
        "tag, IpAddress/NotIpAddress, ${aws:username}. The naive loop runs all 100 of the "
        "principal's statements through fnmatch regexes, action and resource only."
    )
    return rows


def run_pathological(bench: ModuleType, budget_s: float) -> list[dict]:
    """Figure 2."""
    section("2. Pathological wildcards (median µs per decision / per match)")
    rows = bench.pathological_figure(budget_s, timeout_s=10.0)

    def cell(stats: Stats | None) -> str:
        return "TIMEOUT (>10 s)" if stats is None else fmt_us(stats.median_us)

    print(
        table(
            ["case", "iamguard µs/decision", "fnmatch regex µs/match"],
            [[r["case"], cell(r["iamguard"]), cell(r["fnmatch"])] for r in rows],
        )
    )
    return rows


def run_parse(bench: ModuleType, seed: int, count: int) -> list[dict]:
    """Figure 3."""
    section(f"3. Policy.parse throughput ({count:,} distinct 10-statement documents per form)")
    rows = bench.parse_figure(count, seed)
    print(
        table(
            ["input", "median µs/policy", "p90 µs", "policies/s", "statements/s"],
            [
                [
                    r["form"],
                    fmt_us(r["stats"].median_us),
                    fmt_us(r["stats"].p90_us),
                    f"{r['policies_per_s']:,.0f}",
                    f"{r['statements_per_s']:,.0f}",
                ]
                for r in rows
            ],
        )
    )
    return rows


def run_peers(bench: ModuleType | None, seed: int, budget_s: float) -> list[dict]:
    """Figure 4: every engine answers the same queries on the same model; all must agree."""
    model = peer_model(seed)
    queries = peer_queries(model, FnmatchBaseline(model).decide, per_effect=100, seed=seed)
    section(
        f"4. Peers: {len(model.users):,} users, {len(model.groups)} groups, "
        f"{len(model.rules)} rules, {len(queries)} queries (⅓ allow, ⅓ explicit, ⅓ implicit)"
    )
    jobs = (bench.peer_jobs(model, queries) if bench else []) + peer_jobs(model, queries)
    rows = [
        {"engine": job.name, "detail": job.detail, "stats": stats}
        for job, stats in zip(jobs, sample_interleaved(jobs, budget_s), strict=True)
    ]
    print(
        f"All engines agree with the expected allow/deny on all {len(queries)} queries"
        + (" (iamguard also on the exact effect)." if bench else ".")
    )
    print(
        table(
            ["engine", "how", "median µs", "p90 µs", "samples"],
            [
                [
                    r["engine"],
                    r["detail"],
                    fmt_us(r["stats"].median_us),
                    fmt_us(r["stats"].p90_us),
                    f"{r['stats'].samples:,}",
                ]
                for r in rows
            ],
            left=2,
        )
    )
    return rows


def summarize(peers: list[dict], scaling: list[dict]) -> None:
    """The final table, ratios against iamguard (or the baseline when iamguard is missing)."""
    reference = peers[0]
    section(f"Summary (peer model; ratio = engine median / {reference['engine']} median)")
    ref_us = reference["stats"].median_us
    print(
        table(
            ["engine", "median µs/decision", "p90 µs", f"ratio vs {reference['engine']}"],
            [
                [
                    r["engine"],
                    fmt_us(r["stats"].median_us),
                    fmt_us(r["stats"].p90_us),
                    f"{r['stats'].median_us / ref_us:,.2f}x",
                ]
                for r in peers
            ],
        )
    )
    if not scaling:
        return
    medians = [r["stats"].median_us for r in scaling]
    print()
    for label, value in (("peer model", ref_us), ("figure 1, largest model", medians[-1])):
        verdict = "met" if value <= TARGET_US else "MISSED"
        print(
            f"Target ≤ {TARGET_US:g} µs median per decision ({label}): {verdict} "
            f"({fmt_us(value)} µs)."
        )
    growth = medians[-1] / medians[0]
    flat = "flat" if growth <= FLAT_RATIO else "GROWS"
    print(
        f"Model size {SIZES[0]:,} → {SIZES[-1]:,} statements: {fmt_us(medians[0])} → "
        f"{fmt_us(medians[-1])} µs median ({growth:.2f}x, {flat}; "
        f"flat means ≤ {FLAT_RATIO:g}x)."
    )


def main() -> int:
    """Parse arguments, run every figure, print tables, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (fewer samples)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write all figures as JSON")
    parser.add_argument("--seed", type=int, default=20_240_601, help="model generator seed")
    args = parser.parse_args()
    budget = 0.2 if args.quick else 5.0

    print(
        f"# iamguard benchmarks ({'quick' if args.quick else 'full'} run, seed {args.seed}, "
        f"account {ACCOUNT})"
    )
    print(
        f"Python {platform.python_version()} on {platform.machine()}, gc on; "
        "every figure is a per-call time from time.perf_counter_ns."
    )
    overhead = sample(lambda _: None, range(1000), budget)
    print(
        f"Timer + call overhead, included in every figure: median {fmt_us(overhead.median_us)} µs."
    )
    bench = load_engine()
    results: dict = {
        "meta": {
            "quick": args.quick,
            "seed": args.seed,
            "python": platform.python_version(),
            "overhead": overhead,
        }
    }
    if bench:
        results["scaling"] = run_scaling(bench, args.seed, budget)
        results["pathological"] = run_pathological(bench, 1.0 if not args.quick else 0.1)
        results["parse"] = run_parse(bench, args.seed, 200 if args.quick else 2_000)
    results["peers"] = run_peers(bench, args.seed, budget)
    summarize(results["peers"], results.get("scaling", []))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=Stats.as_dict) + "\n")
        print(f"\nFigures written to {args.json}")
    return 0 if bench else 1


if __name__ == "__main__":
    sys.exit(main())
