"""Two bench runs side by side, as issue 19's budgets read them: each page's cost in
requests of the trivial signed-in page, measured in the same run as that page.

    python -m scripts.bench.compare results/small-issue19-before.json \\
        results/small-issue19-after.json

- Alone: the load test's "each page alone" throughput against the trivial page's
  (the ceiling run), inverted: 2.0 means one request costs two trivial ones. Runs
  since the harness judged issue 19 itself measure it warm (an untimed warm-up pass,
  then the same URLs again: see loadtest.py); earlier runs emptied the cache and
  timed from the first request. ``python -m scripts.bench.report`` judges one run
  against issue 10's (the before files) with every budget.
- First view after a change: the in-process "computed" p50 (everything moved on before
  each request, as after a change to that plan) divided by the baseline page's p50.
- Cached: the in-process "cached" p50 divided by the baseline page's p50.
- Mix: throughput as a share of the trivial page's, and p95 as a multiple of its p95.

Prints Markdown tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ALONE_BUDGET = 2.0
FIRST_VIEW_BUDGET = 4.0
MIX_SHARE_BUDGET = 0.5
MIX_P95_BUDGET = 3.0


def _pages(run: dict) -> dict[str, dict]:
    return {p["page"]: p for p in run["measurements"]["pages"]}


def _alone(run: dict) -> dict[str, float]:
    load = run.get("load") or {}
    return {
        row["page"]: 1 / row["share_of_baseline"]
        for row in load.get("alone", [])
        if row.get("share_of_baseline")
    }


def _verdict(value: float | None, budget: float) -> str:
    if value is None:
        return "not measured"
    return "**pass**" if value <= budget else f"**FAIL** ({value / budget:.1f}× budget)"


def render(before: dict, after: dict) -> str:
    out = []
    a_before, a_after = _alone(before), _alone(after)
    out += [
        "| page (load test, each page alone, warm) | before: trivial-page requests | after "
        "| budget ≤ 2 |",
        "|---|---:|---:|---|",
    ]
    for page in a_after:
        b = a_before.get(page)
        out.append(
            f"| {page} | {b:.1f} | {a_after[page]:.1f} | {_verdict(a_after[page], ALONE_BUDGET)} |"
            if b is not None
            else f"| {page} | – | {a_after[page]:.1f} | {_verdict(a_after[page], ALONE_BUDGET)} |"
        )
    out.append("")
    p_before, p_after = _pages(before), _pages(after)
    base_b = next(v for k, v in p_before.items() if k.startswith("Baseline"))
    base_a = next(v for k, v in p_after.items() if k.startswith("Baseline"))
    out += [
        "| page (in process) | before: computed ÷ baseline "
        "| after: computed ÷ baseline (first view after a change; budget ≤ 4) "
        "| before: cached ÷ baseline | after: cached ÷ baseline "
        "| queries before → after (computed / cached) |",
        "|---|---:|---|---:|---:|---|",
    ]
    for page, row in p_after.items():
        if page.startswith("Baseline"):
            continue
        b = p_before.get(page)
        first = row["p50_ms"] / base_a["p50_ms"]
        cached = row["cached_p50_ms"] / base_a["cached_p50_ms"]
        if b:
            out.append(
                f"| {page} | {b['p50_ms'] / base_b['p50_ms']:.1f} | {first:.1f} "
                f"{_verdict(first, FIRST_VIEW_BUDGET)} | "
                f"{b['cached_p50_ms'] / base_b['cached_p50_ms']:.1f} | {cached:.1f} | "
                f"{b['queries']} / {b['cached_queries']} → "
                f"{row['queries']} / {row['cached_queries']} |"
            )
    out.append("")
    out += [
        "| mix under 50 users | before | after | budget |",
        "|---|---:|---:|---|",
    ]
    for run in (before, after):
        load = run.get("load") or {}
        ceiling = load.get("ceiling") or {}
        run["_share"] = load["rps"] / ceiling["rps"] if ceiling.get("rps") else None
        run["_p95"] = load["p95_ms"] / ceiling["p95_ms"] if ceiling.get("p95_ms") else None
    out.append(
        f"| throughput ÷ trivial page's | {before['_share']:.2f} ({before['load']['rps']} ÷ "
        f"{before['load']['ceiling']['rps']} req/s) | {after['_share']:.2f} "
        f"({after['load']['rps']} ÷ {after['load']['ceiling']['rps']} req/s) | ≥ 0.5: "
        + ("**pass**" if after["_share"] >= MIX_SHARE_BUDGET else "**FAIL**")
        + " |"
    )
    out.append(
        f"| p95 ÷ trivial page's p95 | {before['_p95']:.1f} ({before['load']['p95_ms']} ÷ "
        f"{before['load']['ceiling']['p95_ms']} ms) | {after['_p95']:.1f} "
        f"({after['load']['p95_ms']} ÷ {after['load']['ceiling']['p95_ms']} ms) | ≤ 3: "
        + ("**pass**" if after["_p95"] <= MIX_P95_BUDGET else "**FAIL**")
        + " |"
    )
    out.append(
        f"| errors | {before['load']['errors']} | {after['load']['errors']} | 0: "
        + ("**pass**" if after["load"]["errors"] == 0 else "**FAIL**")
        + " |"
    )
    return "\n".join(out)


def main(argv: list[str]) -> int:
    before, after = (json.loads(Path(p).read_text()) for p in argv[:2])
    print(render(before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
