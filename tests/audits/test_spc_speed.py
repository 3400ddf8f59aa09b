"""The fast exact SPC engine against the frozen engine it replaced (issue #19).

Results must be identical on every vector of the specification, in every direction,
and on a seeded sample of random series here; scripts/compare_spc.py runs the full
100,000 (`make bench` runs it too). The speed itself is measured, as a ratio in the same
run, by scripts/bench_spc.py.
"""

from __future__ import annotations

import json
import pickle
import random
from decimal import Decimal, localcontext

import pytest

from audits import spc
from audits.spc.arithmetic import _scaled
from tests.audits.spc_compare import compare, compare_random
from tests.audits.test_spc_vectors import VECTORS_PATH, rule_options, xmr_options
from tests.audits.test_spc_vectors import Fields as VectorFields

VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def _calls(vector: dict):
    """Every engine call a vector's input allows, in each direction."""
    inp = VectorFields(vector["input"], "input")
    for direction in ("up", "down", "neither"):
        if "numerator" in inp.data:
            options = rule_options(inp) | {"target": inp.get("target"), "direction": direction}
            x, n = inp.get("numerator"), inp.get("denominator")
            yield "analyse_p_chart", (x, n), options
            yield "assess_series", (), options | {"numerators": x, "denominators": n}
            continue
        if "reference" in inp.data:
            if direction != "neither":
                yield (
                    "assess_monitoring",
                    (inp.get("reference"), inp.get("monitoring")),
                    {"direction": direction},
                )
            continue
        values = inp.get("values")
        dates = inp.get("dates")
        options = xmr_options(inp, dates) | {"direction": direction}
        yield "analyse_xmr", (values,), options
        yield "assess_series", (values,), options
        yield "analyse_run_chart", (values,), {"direction": direction}
        if direction != "neither" and len(values) >= 12:
            for t in range(12, len(values) + 1):
                yield "assess_closure", (values[:t],), {"direction": direction, "baseline": 12}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_every_vector_gives_identical_results_in_every_direction(vector):
    differences = [d for call in _calls(vector) if (d := compare(*call)) is not None]
    assert not differences, differences[0]


def test_a_seeded_sample_of_random_series_gives_identical_results():
    """1,500 random calls of every entry point: ties, Decimals, ghosts, baselines,
    recalculations, small and large samples. The full 100,000 run in
    scripts/compare_spc.py."""
    count, differences = compare_random(1500, seed=19)
    assert count == 1500
    assert not differences, differences[0]


def test_a_float_is_read_at_its_decimal_scale_exactly_as_its_repr_spells_it():
    rng = random.Random(5)
    for _ in range(3000):
        places = rng.randint(0, 9)
        values = [round(rng.uniform(-1e4, 1e4), places) for _ in range(rng.randint(1, 40))]
        scaled = _scaled(values)
        if scaled is None:  # too many digits for the fast path: decimals are used instead
            continue
        ks, d = scaled
        for k, v in zip(ks, values, strict=True):
            assert Decimal(k).scaleb(-d) == Decimal(repr(v))


def test_lazy_parts_are_exact_whenever_they_are_read():
    """Points, partitions and assurance are built on first read, possibly outside the
    engine's 40-digit context: they must come out the same."""
    x = [12, 13, 3, 28, 40, 15, 29, 2, 11, 7, 1, 9, 14, 20, 6, 30]
    n = [21, 20, 3, 44, 59, 25, 48, 4, 19, 12, 1, 14, 20, 30, 9, 41]
    eager = spc.analyse_p_chart(x, n, direction="up", target=0.6, baseline=1)
    eager_points, eager_parts = eager.points, eager.partitions
    lazy = spc.analyse_p_chart(x, n, direction="up", target=0.6, baseline=1)
    with localcontext() as context:
        context.prec = 5
        assert lazy.points == eager_points and lazy.partitions == eager_parts
        assert lazy.assurance == eager.assurance


def test_a_result_pickles_and_compares_whole():
    chart = spc.analyse_xmr([88, 90, 85, 92, 87, 91, 89, 86, 90, 88] * 2, direction="up")
    copy = pickle.loads(pickle.dumps(chart))  # noqa: S301 - our own bytes, just made
    assert copy == chart and copy.points == chart.points and copy.explain() == chart.explain()
