"""Compare the SPC engine with the frozen reference copy of the engine it replaced
(tests/audits/reference_spc): the same call through both must give identical results,
field by field (floats bit for bit) and explanation by explanation, or the same error.

Used by tests/audits/test_spc_speed.py (the vectors and a seeded sample, in CI) and by
scripts/compare_spc.py (100,000 random series, in `make bench` or by hand).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import random
from decimal import Decimal
from typing import Any

import audits.spc as engine
import tests.audits.reference_spc as reference

ENTRY_POINTS = (
    "assess_series",
    "analyse_xmr",
    "analyse_p_chart",
    "analyse_run_chart",
    "assess_closure",
    "assess_monitoring",
)


def snapshot(value: Any) -> Any:
    """Every field of a result as plain data: floats by their exact bits, enums by value,
    and each object's explanation."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"__type__": type(value).__name__}
        for field in dataclasses.fields(value):
            out[field.name] = snapshot(getattr(value, field.name))
        for extra in ("latest", "code", "rebase_at", "is_deteriorating", "has_concern"):
            if hasattr(type(value), extra):
                try:
                    out[extra] = snapshot(getattr(value, extra))
                except StopIteration:  # `latest` of a result without points
                    out[extra] = "none"
        if hasattr(value, "explain"):
            out["explain()"] = value.explain()
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return value.hex() if math.isfinite(value) else repr(value)
    if isinstance(value, tuple | list):
        return [snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return value


def outcome(module: Any, name: str, args: tuple, kwargs: dict) -> Any:
    try:
        return ("ok", snapshot(getattr(module, name)(*args, **kwargs)))
    except ValueError as error:
        return ("ValueError", str(error))


def compare(name: str, args: tuple, kwargs: dict) -> str | None:
    """None when both engines agree; otherwise a description of the first difference."""
    new, old = outcome(engine, name, args, kwargs), outcome(reference, name, args, kwargs)
    if new == old:
        return None
    return f"{name}{args!r} {kwargs!r}:\n  new {_first_difference(new, old)}"


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list | tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {a!r} != {b!r}"


# --- random cases ---------------------------------------------------------------------------


def _values(rng: random.Random, count: int) -> list:
    """Measurements of many shapes: coarse integers full of ties, 1-3 decimals, long
    floats, Decimals from the database, ints, and a few mixed or awkward ones."""
    shape = rng.randrange(9)
    level, spread = rng.uniform(-50, 150), rng.uniform(0.01, 20)
    step = rng.choice((0, 0, 0, 1, -1)) * rng.uniform(1, 4) * spread
    at = rng.randrange(max(count, 1))
    raw = [rng.gauss(level + (step if i >= at else 0), spread) for i in range(count)]
    if shape == 0:  # few distinct values: ties with the mean, the limits and each other
        return [rng.randint(0, 4) for _ in range(count)]
    if shape == 1:
        return [float(round(v)) for v in raw]
    if shape == 2:
        return [round(v, 1) for v in raw]
    if shape == 3:
        return [round(v, rng.choice((2, 3))) for v in raw]
    if shape == 4:
        return raw  # full-precision floats
    if shape == 5:
        return [Decimal(str(round(v, 3))) for v in raw]  # as stored (DecimalField)
    if shape == 6:
        return [round(v) for v in raw]  # ints
    if shape == 7:  # a mixture, and the odd very large or very small number
        pool = [round(raw[i], 2) for i in range(count)]
        return [rng.choice((v, Decimal(repr(v)), int(v), v * 1e-9, v * 1e12)) for v in pool]
    return [rng.choice((88.0, 90.0, 92.0, 94.0, 96.0)) for _ in range(count)]  # plateaus


def _counts(rng: random.Random, count: int) -> tuple[list, list]:
    shape = rng.randrange(5)
    rate = rng.choice((rng.uniform(0.02, 0.98), 0.5, 0.95, 0.05))
    if shape == 0:
        n = [rng.randint(1, 12) for _ in range(count)]  # small samples: clamped limits
    elif shape == 1:
        n = [rng.randint(10, 40) for _ in range(count)]
    elif shape == 2:
        n = [rng.choice((20, 20, 25)) for _ in range(count)]  # equal samples: ties
    elif shape == 3:
        n = [rng.randint(100, 5000) for _ in range(count)]
    else:
        n = [rng.randint(1, 60) for _ in range(count)]
    over = rng.random() < 0.4  # over-dispersed: Laney p'
    x = []
    for ni in n:
        p = min(1.0, max(0.0, rate + (rng.gauss(0, 0.15) if over else 0)))
        x.append(sum(rng.random() < p for _ in range(ni)) if ni <= 60 else round(ni * p))
    if rng.random() < 0.1:
        x = [float(v) for v in x]
    return x, n


def _rule_options(rng: random.Random, count: int, *, closure: bool = False) -> dict:
    options: dict[str, Any] = {}
    if rng.random() < 0.3:
        options["shift"] = rng.choice((6, 7, 8, 9))
        options["trend"] = rng.choice((5, 6, 7))
    if rng.random() < 0.5:
        options["two_of_three"] = rng.choice(("sql_v2", "mdc2023", "MDC2023"))
    if not closure and rng.random() < 0.3:
        options["conflict"] = rng.choice(("concern", "improvement"))
    if rng.random() < 0.2:
        options["labels"] = [f"2026-{1 + i % 12:02d}-{1 + i // 12:02d}" for i in range(count)]
    if rng.random() < 0.15 and count > 3:
        options["ghosts"] = rng.sample(range(count), rng.randint(1, 3))
    return options


def random_case(rng: random.Random) -> tuple[str, tuple, dict]:
    """One random call of an engine entry point (mostly the charts the sweeps run)."""
    kind = rng.random()
    count = rng.choice((2, 5, 10, 12, 15, 20, 24, 30, 36, 36, 36, 48, 60))
    directions = ("up", "down", "neither")
    if kind < 0.45:
        options = _rule_options(rng, count)
        options["direction"] = rng.choice(directions)
        if rng.random() < 0.5:
            options["target"] = rng.choice((rng.uniform(-20, 150), 90, 92.5))
        if rng.random() < 0.25 and count > 4:
            options["baseline"] = rng.randint(1, count + 2)
        if rng.random() < 0.2 and count > 6:
            first = options.get("baseline", 1)
            if first < count:
                options["recalc_at"] = sorted(rng.sample(range(first, count), 1))
        name = rng.choice(("analyse_xmr", "assess_series"))
        return name, (_values(rng, count),), options
    if kind < 0.75:
        x, n = _counts(rng, count)
        options = _rule_options(rng, count)
        options["direction"] = rng.choice(directions)
        if rng.random() < 0.6:
            options["target"] = rng.choice((rng.random(), 0.8, 0.95, 1, 0))
        if rng.random() < 0.2 and count > 4:
            options["baseline"] = rng.randint(1, count)
        if rng.random() < 0.15 and count > 6:
            first = options.get("baseline", 1)
            if first < count:
                options["recalc_at"] = [rng.randrange(first, count)]
        if rng.random() < 0.5:
            return "assess_series", (), options | {"numerators": x, "denominators": n}
        return "analyse_p_chart", (x, n), options
    if kind < 0.82:
        options = {"direction": rng.choice(directions)}
        if rng.random() < 0.3:
            options["baseline"] = rng.randint(1, count)
        elif rng.random() < 0.2:
            options["centre"] = rng.choice((0, 1, 2, 90.0))
        return "analyse_run_chart", (_values(rng, count),), options
    if kind < 0.91:
        values = _values(rng, count + 12)
        options = _rule_options(rng, len(values), closure=True)
        options["direction"] = rng.choice(("up", "down"))
        options["baseline"] = rng.choice((12, 15, 20))
        if rng.random() < 0.5:
            options["target"] = rng.uniform(-20, 150)
        return "assess_closure", (values,), options
    reference_points = _values(rng, 12)
    monitoring = _values(rng, rng.choice((0, 1, 3, 6, 12, 24)))
    options = _rule_options(rng, 12 + len(monitoring), closure=True)
    options.pop("conflict", None)
    options["direction"] = rng.choice(("up", "down"))
    if rng.random() < 0.5:
        options["target"] = rng.uniform(-20, 150)
    return "assess_monitoring", (reference_points, monitoring), options


def compare_random(count: int, seed: int) -> tuple[int, list[str]]:
    """Run `count` random cases through both engines: (cases run, differences)."""
    rng = random.Random(seed)
    differences = []
    for _ in range(count):
        name, args, kwargs = random_case(rng)
        difference = compare(name, args, kwargs)
        if difference is not None:
            differences.append(difference)
    return count, differences
