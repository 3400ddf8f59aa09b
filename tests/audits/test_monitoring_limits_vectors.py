"""Vectors for limits in monitoring (issue #21, item 2; SPC.md §3.4, §6.2).

Below the Making Data Count minimum (a reference of 12 results, on which limits are
locked) no limits are stored, drawn or used: deterioration is judged by the floor and
the run-chart rules (Anhøj) alone. Limits of a proportion are clipped to 0-100 %.

The rule lives in the engine's callers (``audits.deterioration``, ``audits.charts``), so
each vector runs through them: the frozen reference, the as-of deterioration findings
(the first result at which each rule is complete, as the per-result check records
them) and the chart's lines."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from audits.deterioration import find_deteriorations, freeze_reference, limits_apply
from audits.models import Measurement, MonitoredIndicator
from plans.models import Indicator

START = datetime.date(2026, 1, 5)

VECTORS = [
    {
        # The case: four results froze "limits" of about 92.8-100.7 %; a 90 %
        # result, on target and above the floor, was escalated as a concern.
        "id": "MON-short-reference-no-limits",
        "reference": ["96", "97.5", "96", "97.5"],
        "floor": "85",
        "monitoring": ["90", "95", "91"],
        "expect": {"limits": None, "findings": []},
    },
    {
        # The same level frozen from 12 results: limits are locked and used; the upper
        # one (100.74 %) is clipped to 100 %; the 90 % result is a concern signal.
        "id": "MON-12-reference-limits-clipped",
        "reference": ["96", "97.5"] * 6,
        "floor": "85",
        "monitoring": ["95", "90"],
        "expect": {
            "limits": ("96.7500", "92.7600", "100.0000"),
            "findings": [(2, "astro_lo", "spc")],
        },
    },
    {
        # Short reference, and the results settle below its median though above the
        # floor and the target: the run-chart rule (a run longer than chance allows)
        # finds it, at the first result where the run is long enough for the points
        # then on the chart (log2 of 11 useful points, rounded, plus 3: 7 > 6).
        "id": "MON-short-reference-run-chart",
        "reference": ["96", "97.5", "96", "97.5"],
        "floor": "85",
        "monitoring": ["93"] * 8,
        "expect": {"limits": None, "findings": [(7, "long_run_lo", "run")]},
    },
    {
        # Short reference: a result beyond the floor is escalated whatever the limits.
        "id": "MON-short-reference-floor",
        "reference": ["96", "97.5", "96", "97.5"],
        "floor": "85",
        "monitoring": ["95", "80"],
        "expect": {"limits": None, "findings": [(2, "floor", "floor")]},
    },
]


def _indicator() -> Indicator:
    return Indicator(
        name="Care plans reviewed with the person",
        measure_type=Indicator.MeasureType.PROPORTION,
        direction=Indicator.Direction.HIGHER,
        target=Decimal("90"),
        unit="%",
        frequency="monthly",
    )


def _results(indicator, values, first: datetime.date) -> list[Measurement]:
    return [
        Measurement(
            pk=1000 + i,
            indicator=indicator,
            measured_on=first + datetime.timedelta(days=31 * i),
            value=Decimal(v),
        )
        for i, v in enumerate(values)
    ]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_monitoring_limits_vector(vector):
    indicator = _indicator()
    reference = _results(indicator, vector["reference"], START)
    ref = freeze_reference(indicator, reference, sustain_months=3, min_reaudits=3)
    limits = None if ref.mean is None else (str(ref.mean), str(ref.lower), str(ref.upper))
    assert limits == vector["expect"]["limits"]

    monitored = MonitoredIndicator(
        indicator=indicator,
        floor=Decimal(vector["floor"]),
        reference_values=ref.values,
        reference_mean=ref.mean,
        reference_lower=ref.lower,
        reference_upper=ref.upper,
    )
    assert limits_apply(monitored) == (limits is not None)
    later = _results(
        indicator, vector["monitoring"], reference[-1].measured_on + datetime.timedelta(days=31)
    )
    # As the per-result check sees them: each rule recorded at the first result at which
    # it is complete (1-based monitoring result), never again.
    seen: dict[tuple[int, str], tuple[int, str, str]] = {}
    for t in range(1, len(later) + 1):
        for finding in find_deteriorations(monitored, later[:t]):
            key = (finding.measurement.pk, finding.rule)
            seen.setdefault(key, (t, finding.rule, finding.kind))
    assert sorted(seen.values()) == vector["expect"]["findings"]
