"""Per-call timing with ``time.perf_counter_ns``: medians and p90s over many repetitions."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stats:
    """Distribution of per-call wall times, in nanoseconds."""

    median_ns: float
    p90_ns: float
    mean_ns: float
    samples: int

    @property
    def median_us(self) -> float:
        """Median in microseconds."""
        return self.median_ns / 1000

    @property
    def p90_us(self) -> float:
        """90th percentile in microseconds."""
        return self.p90_ns / 1000

    def as_dict(self) -> dict[str, float]:
        """JSON-ready figures in microseconds."""
        return {
            "median_us": self.median_us,
            "p90_us": self.p90_us,
            "mean_us": self.mean_ns / 1000,
            "samples": self.samples,
        }


def summarize(samples: list[int]) -> Stats:
    """Median (mean of the middle two for even counts), nearest-rank p90 and mean."""
    ordered = sorted(samples)
    n = len(ordered)
    mid = n // 2
    median = ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    p90 = ordered[min(n - 1, (9 * n) // 10)]
    return Stats(float(median), float(p90), sum(ordered) / n, n)


def sample(
    call: Callable[[Any], object],
    inputs: Sequence[Any],
    budget_s: float,
    max_samples: int = 400_000,
    warmup: bool = True,
) -> Stats:
    """Time ``call(x)`` once per input, in rounds over ``inputs``, until the time budget is spent.

    An untimed warm-up round runs first unless ``warmup`` is false. At least one timed round runs.
    """
    if warmup:
        for item in inputs:
            call(item)
    clock = time.perf_counter_ns
    times: list[int] = []
    append = times.append
    deadline = clock() + int(budget_s * 1e9)
    while True:
        for item in inputs:
            start = clock()
            call(item)
            append(clock() - start)
        if clock() >= deadline or len(times) >= max_samples:
            return summarize(times)


def finishes(call: Callable[[], object], timeout_s: float) -> bool:
    """Run ``call`` once in a forked child; false if it is still running after ``timeout_s``."""
    child = multiprocessing.get_context("fork").Process(target=call)
    child.start()
    child.join(timeout_s)
    if child.is_alive():
        child.kill()
        child.join()
        return False
    return True


def stop(child: subprocess.Popen[Any], grace_s: float) -> None:
    """End a child process: SIGTERM, then SIGKILL if it is still running after ``grace_s``."""
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@dataclass(frozen=True)
class Job:
    """Something to time: ``call(x)`` for each ``x`` in ``inputs``.

    ``once``: one pass, no warm-up (for inputs that a call changes, such as fresh policies).
    """

    name: str
    detail: str
    call: Callable[[Any], object]
    inputs: Sequence[Any]
    once: bool = False


def sample_interleaved(
    jobs: Sequence[Job], budget_s: float, turns: int = 10, max_samples: int = 400_000
) -> list[Stats]:
    """Time each job for about ``budget_s`` in all, in turns, so drifting load hits all alike.

    Taking turns keeps the ratios between jobs meaningful on a noisy machine. One warm-up pass over
    each job's inputs comes first; ``once`` jobs are timed on a single pass before the turns.
    """
    results: dict[int, Stats] = {}
    times: dict[int, list[int]] = {}
    for index, job in enumerate(jobs):
        if job.once:
            results[index] = sample(job.call, job.inputs, 0, warmup=False)
        else:
            for item in job.inputs:
                job.call(item)
            times[index] = []
    clock = time.perf_counter_ns
    turn_ns = int(budget_s * 1e9 / turns)
    positions = dict.fromkeys(times, 0)
    for turn in range(1, turns + 1):
        limit = max_samples * turn // turns  # spread capped jobs over every turn
        for index, samples in times.items():
            job, position = jobs[index], positions[index]
            call, inputs, append = job.call, job.inputs, samples.append
            deadline = clock() + turn_ns
            while len(samples) < limit:
                item = inputs[position % len(inputs)]
                position += 1
                start = clock()
                call(item)
                end = clock()
                append(end - start)
                if end >= deadline:
                    break
            positions[index] = position
    results.update((index, summarize(samples)) for index, samples in times.items())
    return [results[index] for index in range(len(jobs))]


# --- printing figures ---------------------------------------------------------------------------


def fmt_us(value: float) -> str:
    """Microseconds with precision that suits the magnitude."""
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A Markdown table: the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        padded = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join("-" * (w + 2) if i < left else "-" * (w + 1) + ":" for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
