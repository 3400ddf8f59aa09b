"""Benchmark the pure SPC engine: how many indicator series per second `assess_series`
judges, against the frozen copy of the engine it replaced (tests/audits/reference_spc),
in the same run. No database and no Django.

    python3 scripts/bench_spc.py            # 100,000 series of 36 points
    python3 scripts/bench_spc.py --n 5000   # a quicker run

The series are pseudo-random but deterministic (fixed seed): monthly scores with a mix
of directions, one in five audit counts (p-chart), and one in ten with a step change
two thirds of the way through. Only the assessment is timed, not the data generation.
Both engines judge the same series in alternating blocks of 500, so a busy machine slows
both alike; the time counted is the process's CPU time (wall-clock time is shown too).
The ratio is the budget (issue #19: at least 8 times the replaced engine).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Run from anywhere: the engine lives in the project root's `audits` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

POINTS = 36


@dataclass(frozen=True)
class Series:
    direction: str
    target: float
    values: list[float] | None = None
    numerators: list[int] | None = None
    denominators: list[int] | None = None


def generate(count: int, seed: int) -> Iterator[Series]:
    rng = random.Random(seed)
    for i in range(count):
        direction = ("up", "down", "neither")[i % 3]
        step = rng.choice((-1, 1)) * 3 if i % 10 == 0 else 0
        if i % 5 == 0:
            rate = rng.uniform(0.6, 0.9)
            denominators = [rng.randint(10, 40) for _ in range(POINTS)]
            chance = [min(0.99, rate + (0.03 * step if t >= 24 else 0)) for t in range(POINTS)]
            numerators = [
                sum(rng.random() < p for _ in range(n))
                for p, n in zip(chance, denominators, strict=True)
            ]
            yield Series(direction, 0.8, numerators=numerators, denominators=denominators)
        else:
            level, spread = rng.uniform(50, 90), rng.uniform(1, 5)
            values = [
                round(rng.gauss(level + (step * spread if t >= 24 else 0), spread), 1)
                for t in range(POINTS)
            ]
            yield Series(direction, level, values=values)


def _assess(engine, series: Series):
    return engine.assess_series(
        series.values,
        numerators=series.numerators,
        denominators=series.denominators,
        direction=series.direction,
        target=series.target,
    )


def time_engine(engine, block: list[Series]) -> tuple[float, float]:
    """CPU and wall-clock seconds `engine` takes to assess `block` (results dropped)."""
    cpu, wall = time.process_time(), time.perf_counter()
    for series in block:
        _assess(engine, series)
    return time.process_time() - cpu, time.perf_counter() - wall


def compare_engines(n: int, seed: int, block_size: int = 500) -> dict:
    """Both engines on the same `n` series, alternating blocks; then, untimed, their
    methods and signals must agree on every series."""
    import audits.spc as engine
    import tests.audits.reference_spc as reference

    methods: Counter[str] = Counter()
    signals: Counter[str] = Counter()
    spent = {"new": [0.0, 0.0], "reference": [0.0, 0.0]}
    series = list(generate(n, seed))
    for start in range(0, n, block_size):
        block = series[start : start + block_size]
        for name, module in (("reference", reference), ("new", engine)):
            cpu, wall = time_engine(module, block)
            spent[name][0] += cpu
            spent[name][1] += wall
    for one in series:
        a, b = _assess(engine, one), _assess(reference, one)
        codes = [s.code for s in a.signals]
        if codes != [s.code for s in b.signals] or a.method.value != b.method.value:
            raise SystemExit(f"the engines disagree: {codes} != {[s.code for s in b.signals]}")
        methods[a.method.value] += 1
        signals.update(codes)
    new_cpu, new_wall = spent["new"]
    old_cpu, old_wall = spent["reference"]
    return {
        "series": n,
        "points_per_series": POINTS,
        "seconds": round(new_cpu, 2),
        "series_per_second": round(n / new_cpu),
        "reference_seconds": round(old_cpu, 2),
        "reference_series_per_second": round(n / old_cpu),
        "ratio": round(old_cpu / new_cpu, 2),
        "wall_ratio": round(old_wall / new_wall, 2),
        "methods": dict(methods),
        "signals": dict(signals.most_common()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of series")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    r = compare_engines(args.n, args.seed)
    print(f"{args.n:,} series of {POINTS} points (assessment only, CPU time):")
    print(f"  this engine:     {r['seconds']} s, {r['series_per_second']:,} series per second")
    print(
        f"  replaced engine: {r['reference_seconds']} s, "
        f"{r['reference_series_per_second']:,} series per second"
    )
    print(f"  ratio: {r['ratio']}x (wall-clock: {r['wall_ratio']}x); budget 8x")
    print("methods:", r["methods"])
    print("signals:", r["signals"])


if __name__ == "__main__":
    main()
