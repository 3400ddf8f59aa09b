"""Every test vector of the SPC specification, run against the engine.

The vectors are read from the file named by the SPC_VECTORS environment variable, or
from the verbatim copy in tests/audits/data/spc_vectors.json. Each vector is dispatched
on its id prefix; settings and direction come from the vector itself. A vector this
module cannot interpret (unknown prefix, unknown or missing key) fails, never skips.

Where a vector leaves a setting out, the conventions of SPC.md §9 apply: shift 7,
trend 7, the "sql_v2" two-of-three variant and no moving-range screening. A missing
direction means "up" and a missing conflict rule means the product's "concern".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audits.spc import (
    ChartResult,
    ClosureState,
    analyse_p_chart,
    analyse_run_chart,
    analyse_xmr,
    assess_closure,
    assess_monitoring,
)

DEFAULT_VECTORS = Path(__file__).parent / "data" / "spc_vectors.json"
VECTORS_PATH = Path(os.environ.get("SPC_VECTORS") or DEFAULT_VECTORS)

Json = dict[str, Any]


class UninterpretableVector(Exception):
    """A vector whose prefix or shape this module does not understand."""


def load_vectors(path: Path) -> list[Json]:
    vectors = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(vectors, list):
        raise UninterpretableVector(f"{path} must hold a JSON list of vectors")
    return vectors


def vector_id(vector: object) -> str:
    return str(vector.get("id")) if isinstance(vector, dict) else repr(vector)


class Fields:
    """Reads a vector's section and insists that every key in it was understood."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise UninterpretableVector(f"{where} must be an object, got {data!r}")
        self.data: Json = data
        self.where = where
        self.used: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def require(self, key: str) -> Any:
        if key not in self.data:
            raise UninterpretableVector(f"{self.where} lacks the required key {key!r}")
        return self.get(key)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise UninterpretableVector(f"{self.where} has keys this test cannot read: {unknown}")


# --- comparisons ---------------------------------------------------------------------------


def tolerance(expected: float) -> float:
    """Expected numbers are rounded: allow half a unit in their last written decimal (at
    least the sixth, since the file writes 6 or 9 decimals and drops trailing zeros)."""
    text = repr(float(expected))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
    return max(0.5 * 10 ** -max(decimals, 5), 1e-9)


def assert_close(actual: float | None, expected: float, what: str) -> None:
    assert actual is not None, f"{what}: expected {expected}, got nothing"
    assert abs(actual - expected) <= tolerance(expected), f"{what}: {actual} != {expected}"


LIMIT_FIELDS = {
    "mean": "mean",
    "upl": "upper",
    "lpl": "lower",
    "upper_2sigma": "upper_2sigma",
    "lower_2sigma": "lower_2sigma",
    "upper_1sigma": "upper_1sigma",
    "lower_1sigma": "lower_1sigma",
}


def check_limits(chart: ChartResult, number: int | None, expected: object, what: str) -> None:
    """Limits of partition `number`, or of the partition of the latest point."""
    if number is None:
        number = chart.latest.partition
    partition = next((p for p in chart.partitions if p.number == number), None)
    assert partition is not None, f"{what}: the chart has no partition {number}"
    fields = Fields(expected, what)
    for key in list(fields.data):
        want = fields.get(key)
        if key == "mr_mean":
            assert_close(partition.mr_mean, want, f"{what}.mr_mean")
        elif key in LIMIT_FIELDS:
            assert partition.limits is not None, f"{what}: partition {number} has no limits"
            assert_close(getattr(partition.limits, LIMIT_FIELDS[key]), want, f"{what}.{key}")
        else:
            fields.used.discard(key)
    fields.finish()


def check_flags(chart: ChartResult, expected: object, dates: list[str] | None, what: str) -> None:
    """Every flagged point, with its rules, classification and conflict flag; nothing else."""
    if not isinstance(expected, list):
        raise UninterpretableVector(f"{what} must be a list of flagged points")
    wanted = {}
    for n, flag in enumerate(expected):
        fields = Fields(flag, f"{what}[{n}]")
        point = fields.require("point")
        wanted[point] = (
            sorted(fields.require("rules")),
            fields.require("classification"),
            fields.require("conflict"),
        )
        date, value = fields.get("date"), fields.get("value")
        fields.finish()
        if date is not None:
            assert dates is not None and dates[point - 1] == date, f"{what}: date of {point}"
        if value is not None:
            assert_close(chart.points[point - 1].value, value, f"{what}: value of {point}")
    got = {
        p.index + 1: (sorted(p.rules), p.classification and p.classification.value, p.conflict)
        for p in chart.points
        if p.rules
    }
    assert got == wanted, f"{what}: flagged points differ"


def patterns(found: tuple[Any, ...]) -> list[list[int]]:
    """IHI patterns as the vectors write them: [first, last, +1 up/above or -1]."""
    return [[p.first, p.last, 1 if p.side.value == "high" else -1] for p in found]


# --- reading settings ----------------------------------------------------------------------


def rule_options(inp: Fields) -> dict[str, Any]:
    if inp.get("mr_screening", False):
        raise UninterpretableVector(
            "moving-range screening is not implemented: MDC (and this product) keep it off"
        )
    return {
        "direction": inp.get("improvement", "Up"),
        "shift": inp.get("shift_n", 7),
        "trend": inp.get("trend_n", 7),
        "two_of_three": inp.get("two_sigma_variant", "sql_v2"),
        "conflict": inp.get("conflict_rule", "Concern"),
    }


def xmr_options(inp: Fields, dates: list[str] | None) -> dict[str, Any]:
    def index_of(date: str, key: str) -> int:
        if dates is None or date not in dates:
            raise UninterpretableVector(f"{key} {date!r} is not one of the vector's dates")
        return dates.index(date)

    options = rule_options(inp) | {"target": inp.get("target"), "labels": dates}
    if (last := inp.get("baseline_last_date")) is not None:
        options["baseline"] = index_of(last, "baseline_last_date") + 1
    if (recalc := inp.get("recalculate_from_date")) is not None:
        options["recalc_at"] = [index_of(recalc, "recalculate_from_date")]
    options["ghosts"] = [index_of(d, "ghosted_dates") for d in inp.get("ghosted_dates", [])]
    return options


# --- one checker per kind of vector --------------------------------------------------------

CENTRE_KEY = re.compile(r"runchart_shift_if_centre_(-?\d+(?:\.\d+)?)$")


def check_xmr_vector(vector: Json) -> None:
    """MDC- and EDGE- vectors: an XmR chart, and optionally run-chart rules on the same data."""
    inp = Fields(vector["input"], "input")
    values = inp.require("values")
    dates = inp.get("dates")
    options = xmr_options(inp, dates)
    inp.finish()
    chart = analyse_xmr(values, **options)
    direction = options["direction"]

    exp = Fields(vector["expected"], "expected")
    for key in list(exp.data):
        want = exp.get(key)
        if key == "limits":
            check_limits(chart, None, want, key)
        elif key == "partition_limits":
            for number, limits in Fields(want, key).data.items():
                check_limits(chart, int(number), limits, f"{key}[{number}]")
        elif key in ("flags", "spc_flags"):
            check_flags(chart, want, dates, key)
        elif key == "variation_icon":
            assert chart.variation.value == want
        elif key == "assurance_icon":
            assert chart.assurance is not None and chart.assurance.icon.value == want
        elif key == "perla_trends":
            run = analyse_run_chart(values, direction=direction)
            assert patterns(run.ihi.trends) == want
        elif match := CENTRE_KEY.match(key):
            run = analyse_run_chart(values, direction=direction, centre=float(match[1]))
            assert patterns(run.ihi.shifts) == want
        else:
            exp.used.discard(key)
    exp.finish()


def check_p_vector(vector: Json) -> None:
    """P- vectors: a p-chart, and optionally an XmR chart of the same proportions."""
    inp = Fields(vector["input"], "input")
    numerators, denominators = inp.require("numerator"), inp.require("denominator")
    dates = inp.get("dates")
    options = rule_options(inp) | {"target": inp.get("target"), "labels": dates}
    inp.finish()
    chart = analyse_p_chart(numerators, denominators, **options)

    exp = Fields(vector["expected"], "expected")
    for key in list(exp.data):
        want = exp.get(key)
        if key == "pbar":
            check_limits(chart, None, {"mean": want}, key)
        elif key == "sigma_z":
            assert_close(chart.partitions[-1].sigma_z, want, key)
        elif key == "laney":
            assert chart.partitions[-1].laney is want
        elif key == "p_rows":
            for row in want:
                fields = Fields(row, "p_rows[]")
                point = chart.points[fields.require("point") - 1]
                assert point.limits is not None
                assert_close(point.value, fields.require("p"), f"p of {point.name}")
                assert_close(point.limits.lower, fields.require("lcl"), f"lcl of {point.name}")
                assert_close(point.limits.upper, fields.require("ucl"), f"ucl of {point.name}")
                fields.finish()
        elif key == "flags":
            check_flags(chart, want, dates, key)
        elif key == "xmr_on_proportions_flags":
            proportions = [x / n for x, n in zip(numerators, denominators, strict=True)]
            check_flags(analyse_xmr(proportions, **options), want, dates, key)
        elif key == "variation_icon":
            assert chart.variation.value == want
        elif key == "assurance_icon":
            assert chart.assurance is not None and chart.assurance.icon.value == want
        else:
            exp.used.discard(key)
    exp.finish()


def check_run_vector(vector: Json) -> None:
    """RUN- vectors: Anhøj and IHI (Perla) run-chart rules."""
    inp = Fields(vector["input"], "input")
    values = inp.require("values")
    run = analyse_run_chart(
        values,
        direction=inp.get("improvement", "Up"),
        centre=inp.get("centre"),
        baseline=inp.get("baseline_n"),
    )
    inp.finish()

    exp = Fields(vector["expected"], "expected")
    for key in list(exp.data):
        fields = Fields(exp.get(key), key)
        if key == "anhoej":
            assert_close(run.centre, fields.require("median"), "anhoej.median")
            for field in (
                "n_useful",
                "longest_run",
                "longest_run_max",
                "crossings",
                "crossings_min",
                "signal",
            ):
                assert getattr(run.anhoej, field) == fields.require(field), f"anhoej.{field}"
        elif key == "perla":
            assert_close(run.centre, fields.require("median"), "perla.median")
            assert run.anhoej.n_useful == fields.require("n_useful")
            assert patterns(run.ihi.shifts) == fields.require("shifts")
            assert patterns(run.ihi.trends) == fields.require("trends")
            assert run.ihi.n_runs == fields.require("n_runs")
        else:
            exp.used.discard(key)
            continue
        fields.finish()
    exp.finish()


def closure_entry(values: list[float], t: int, options: dict[str, Any]) -> list[Any]:
    """One decision-log entry, as SPC.md §9 writes it:
    [t, state, rules or phase length, rebase index or locked limits]."""
    a = assess_closure(values[:t], **options)
    state = a.state
    if state is ClosureState.IMPROVING_UNCONFIRMED:
        third: Any = a.phase_points
    elif state is ClosureState.BASELINE_UNSTABLE:
        third = sorted({s.code for s in a.baseline_signals})
    elif a.limits_locked:
        third = list(a.concern_rules)
    else:
        third = list(a.improvement_rules)
    fourth: Any = None
    if state is ClosureState.REBASED:
        fourth = a.rebase_at
    elif a.limits_locked and a.phase_limits is not None:
        limits = a.phase_limits
        fourth = {"mean": limits.mean, "upl": limits.upper, "lpl": limits.lower}
    return [t, state.value, third, fourth]


def check_closure_vector(vector: Json) -> None:
    inp = Fields(vector["input"], "input")
    values = inp.require("values")
    options = rule_options(inp)
    options.update(
        baseline=inp.require("baseline_n"),
        target=inp.get("target"),
        min_phase=inp.get("min_phase", 12),
        labels=inp.get("dates"),
    )
    inp.finish()
    exp = Fields(vector["expected"], "expected")
    log = exp.require("decision_log")
    exp.finish()
    for entry in log:
        if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], int)):
            raise UninterpretableVector(f"decision_log entry {entry!r} is not [t, state, ., .]")
        got = closure_entry(values, entry[0], options)
        want = entry
        assert got[:3] == want[:3], f"t={entry[0]}: {got} != {want}"
        if isinstance(want[3], dict):
            assert isinstance(got[3], dict), f"t={entry[0]}: no locked limits"
            for key, value in want[3].items():
                assert_close(got[3].get(key), value, f"t={entry[0]} {key}")
        else:
            assert got[3] == want[3], f"t={entry[0]}: {got} != {want}"


def check_monitoring_vector(vector: Json) -> None:
    inp = Fields(vector["input"], "input")
    reference, monitoring = inp.require("reference"), inp.require("monitoring")
    options = rule_options(inp)
    options.pop("conflict")  # monitoring always shows concern
    options.update(target=inp.get("target"), labels=inp.get("dates"))
    inp.finish()

    full = assess_monitoring(reference, monitoring, **options)
    exp = Fields(vector["expected"], "expected")
    for key in list(exp.data):
        want = exp.get(key)
        if key == "first_deterioration":
            if want is None:
                assert not full.is_deteriorating
                continue
            fields = Fields(want, key)
            first = full.first_detected_at
            assert first is not None, "no deterioration detected"
            assert first - full.monitoring_start + 1 == fields.require("monitoring_point")
            assert sorted(full.first_rules) == sorted(fields.require("rules"))
            fields.finish()
        elif key == "log":
            for row in want:
                fields = Fields(row, "log[]")
                t = fields.require("t")
                as_of = assess_monitoring(reference, monitoring[:t], **options)
                assert sorted(as_of.concern_rules) == sorted(
                    fields.require("concern_rules_so_far")
                ), f"t={t}"
                assert as_of.last_point_concern is fields.require("last_point_concern"), f"t={t}"
                fields.finish()
        else:
            exp.used.discard(key)
    exp.finish()


CHECKERS: dict[str, Callable[[Json], None]] = {
    "MDC-": check_xmr_vector,
    "EDGE-": check_xmr_vector,
    "P-": check_p_vector,
    "RUN-": check_run_vector,
    "LIFECYCLE-closure-": check_closure_vector,
    "LIFECYCLE-monitoring-": check_monitoring_vector,
}


def check_vector(vector: object) -> None:
    """Run one vector through the engine, or raise UninterpretableVector."""
    if not isinstance(vector, dict) or not isinstance(vector.get("id"), str):
        raise UninterpretableVector(f"a vector must be an object with a string id: {vector!r}")
    unknown = set(vector) - {"id", "source", "input", "expected"}
    if unknown or "input" not in vector or "expected" not in vector:
        raise UninterpretableVector(f"{vector['id']}: expected id, source, input, expected")
    for prefix, checker in CHECKERS.items():
        if vector["id"].startswith(prefix):
            checker(vector)
            return
    raise UninterpretableVector(f"{vector['id']}: no checker for this id prefix")


VECTORS = load_vectors(VECTORS_PATH)


@pytest.mark.parametrize("vector", VECTORS, ids=[vector_id(v) for v in VECTORS])
def test_vector(vector: Json) -> None:
    check_vector(vector)


def test_vector_file_is_not_empty_and_ids_are_unique() -> None:
    ids = [vector_id(v) for v in VECTORS]
    assert ids, f"{VECTORS_PATH} holds no vectors"
    assert len(ids) == len(set(ids)), "vector ids must be unique"


# --- every vector again, mirrored: lower is better ------------------------------------------

MIRRORED_RULE = {"astro_hi": "astro_lo", "shift_hi": "shift_lo", "trend_up": "trend_dn"}
MIRRORED_RULE |= {"2of3_hi": "2of3_lo"}
MIRRORED_RULE |= {low: high for high, low in MIRRORED_RULE.items()}
MIRRORED_LIMIT = {"mean": "mean", "mr_mean": "mr_mean", "upl": "lpl", "lpl": "upl"}
MIRRORED_LIMIT |= {"upper_2sigma": "lower_2sigma", "lower_2sigma": "upper_2sigma"}
MIRRORED_ICON = {"High": "Low", "Low": "High"}


def mirrored(vector: Json) -> Json:
    """The same vector with every value negated and the direction reversed: the engine
    must give the mirror-image verdict (high-side rules become low-side ones)."""
    m = json.loads(json.dumps(vector))
    m["id"] += "-mirrored"
    inp, exp = m["input"], m["expected"]
    inp["improvement"] = {"up": "Down", "down": "Up"}[inp.get("improvement", "Up").lower()]
    for key in ("values", "reference", "monitoring"):
        if key in inp:
            inp[key] = [-v for v in inp[key]]
    if inp.get("target") is not None:
        inp["target"] = -inp["target"]

    def limits(old: Json) -> Json:
        return {MIRRORED_LIMIT[k]: v if k == "mr_mean" else -v for k, v in old.items()}

    if "limits" in exp:
        exp["limits"] = limits(exp["limits"])
    for number, old in exp.get("partition_limits", {}).items():
        exp["partition_limits"][number] = limits(old)
    for flag in exp.get("flags", []) + exp.get("spc_flags", []):
        flag["value"] = -flag["value"]
        flag["rules"] = [MIRRORED_RULE[r] for r in flag["rules"]]
    if "variation_icon" in exp:
        icon = exp["variation_icon"]
        exp["variation_icon"] = re.sub(r"High|Low", lambda h: MIRRORED_ICON[h[0]], icon)
    for entry in exp.get("decision_log", []):
        if isinstance(entry[2], list):
            entry[2] = sorted(MIRRORED_RULE[r] for r in entry[2])
        if isinstance(entry[3], dict):
            entry[3] = limits(entry[3])
    for row in exp.get("log", []) + [exp.get("first_deterioration") or {}]:
        for key in ("concern_rules_so_far", "rules"):
            if key in row:
                row[key] = [MIRRORED_RULE[r] for r in row[key]]
    return m


MIRRORABLE = [v for v in VECTORS if vector_id(v).startswith(("MDC-", "LIFECYCLE-"))]


@pytest.mark.parametrize("vector", MIRRORABLE, ids=[vector_id(v) for v in MIRRORABLE])
def test_mirrored_vector(vector: Json) -> None:
    check_vector(mirrored(vector))


# --- the harness itself fails loudly -------------------------------------------------------

KNOWN_XMR = {
    "id": "EDGE-synthetic",
    "input": {"values": [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2]},
    "expected": {"spc_flags": []},
}


def test_a_known_synthetic_vector_passes() -> None:
    check_vector(KNOWN_XMR)


@pytest.mark.parametrize(
    "vector",
    [
        pytest.param({"id": "XYZ-unknown", "input": {}, "expected": {}}, id="unknown-prefix"),
        pytest.param({"id": "PPRIME-x", "input": {}, "expected": {}}, id="near-miss-prefix"),
        pytest.param(KNOWN_XMR | {"expected": {"mystery": 1}}, id="unknown-expected-key"),
        pytest.param(
            KNOWN_XMR | {"input": KNOWN_XMR["input"] | {"colour": "red"}}, id="unknown-input-key"
        ),
        pytest.param(
            KNOWN_XMR | {"input": KNOWN_XMR["input"] | {"mr_screening": True}},
            id="unsupported-setting",
        ),
        pytest.param(KNOWN_XMR | {"input": {}}, id="missing-values"),
        pytest.param({"id": "RUN-x", "input": {"values": [1]}}, id="missing-expected"),
        pytest.param(
            {
                "id": "LIFECYCLE-closure-x",
                "input": {"values": [1] * 20, "baseline_n": 12},
                "expected": {"decision_log": [["t", "WATCHING"]]},
            },
            id="malformed-log-entry",
        ),
        pytest.param(["not", "an", "object"], id="not-an-object"),
    ],
)
def test_an_uninterpretable_vector_fails(vector: object) -> None:
    with pytest.raises(UninterpretableVector):
        check_vector(vector)


def test_a_wrong_expectation_fails() -> None:
    wrong = KNOWN_XMR | {"expected": {"limits": {"mean": 99}}}
    with pytest.raises(AssertionError):
        check_vector(wrong)
