"""What every benchmark shares: statistics, the machine it ran on, a table and a JSON record.

Each benchmark is `python -m bench.NAME [options]`; it prints a table (figure, target, pass)
and writes bench/results/NAME.json. Figures are medians over several runs; ratios are taken
within one run, because absolute times on a shared machine drift between runs.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Smoke runs in the test suite point both elsewhere, so they never overwrite real results.
RESULTS = Path(os.environ.get("NEWSBOT_BENCH_RESULTS") or Path(__file__).parent / "results")
CACHE = Path(os.environ.get("NEWSBOT_BENCH_CACHE") or Path(__file__).parent / ".cache")


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure beside its target. `better` says which way is good."""

    name: str
    value: float
    unit: str
    target: float | None = None
    better: str = "lower"  # or "higher"

    @property
    def meets(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target if self.better == "lower" else self.value >= self.target


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def report(name: str, figures: Sequence[Figure], details: dict[str, Any] | None = None) -> Path:
    """Print the table and write bench/results/NAME.json; returns the JSON path."""
    width = max(len(figure.name) for figure in figures)
    print(f"\n{name}")
    print(f"{'figure':<{width}}  {'value':>12}  {'target':>12}  ok")
    for figure in figures:
        target = (
            ""
            if figure.target is None
            else f"{'≤' if figure.better == 'lower' else '≥'}{figure.target:g}"
        )
        verdict = {True: "yes", False: "NO", None: ""}[figure.meets]
        value = f"{figure.value:>10.3f} {figure.unit:<2}"
        print(f"{figure.name:<{width}}  {value} {target:>11}  {verdict}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "figures": [asdict(figure) | {"meets": figure.meets} for figure in figures],
        "details": details or {},
    }
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {path}")
    return path


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
