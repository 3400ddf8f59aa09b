"""Benchmark the pure SPC engine: how many indicator series per second `assess_series`
judges. No database and no Django.

    python3 scripts/bench_spc.py            # 100,000 series of 36 points
    python3 scripts/bench_spc.py --n 5000   # a quicker run

The series are pseudo-random but deterministic (fixed seed): monthly scores with a mix
of directions, one in five audit counts (p-chart), and one in ten with a step change
two thirds of the way through. Only the assessment is timed, not the data generation.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of series")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    from audits.spc import assess_series

    methods: Counter[str] = Counter()
    signals: Counter[str] = Counter()
    elapsed = 0.0
    for series in generate(args.n, args.seed):
        started = time.perf_counter()
        result = assess_series(
            series.values,
            numerators=series.numerators,
            denominators=series.denominators,
            direction=series.direction,
            target=series.target,
        )
        elapsed += time.perf_counter() - started
        methods[result.method.value] += 1
        signals.update(signal.code for signal in result.signals)

    print(f"{args.n:,} series of {POINTS} points in {elapsed:.1f} s (assessment only)")
    print(f"{args.n / elapsed:,.0f} series per second")
    print("methods:", dict(methods))
    print("signals:", dict(signals.most_common()))


if __name__ == "__main__":
    main()
