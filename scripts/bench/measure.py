"""In-process measurements on whatever database Django is connected to (the bench
database under ``python -m scripts.bench``, the test database in the smoke test).

- pages: Django test ``Client`` with ``CaptureQueriesContext``, warm (a few untimed
  requests first), then ``requests`` timed requests each: p50/p95 wall time of the
  whole request in this process (middleware, view, template), and the query count;
- sweeps: every job in ``core.jobs.JOBS``, twice (the first run queues everything that
  is due; the second is the steady state, everything already queued). Celery tasks
  they queue are counted, not run (in production the worker sends the emails);
- the SPC engine alone (``scripts/bench_spc.py``'s series and timing);
- an import of 5,000 rows (validate, then commit) through ``audits.services``;
- closure report compilation and PDF rendering (``governance``).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import math
import os
import statistics
import time
from collections import Counter

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scripts.bench import config


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@contextlib.contextmanager
def tasks_counted():
    """Count Celery tasks queued instead of running or sending them."""
    from celery.app.task import Task

    queued: Counter[str] = Counter()
    original = Task.apply_async

    def fake_apply_async(self, args=None, kwargs=None, **options):
        queued[self.name] += 1
        return None

    Task.apply_async = fake_apply_async
    try:
        yield queued
    finally:
        Task.apply_async = original


@contextlib.contextmanager
def queries_counted():
    """Count every statement (CaptureQueriesContext keeps only the last 9,000)."""
    box = {"n": 0}

    def wrapper(execute, sql, params, many, context):
        box["n"] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield box


# --- The subjects ------------------------------------------------------------------------


def subjects() -> dict:
    """The people and plans measured, looked up by the names the generator gave them."""
    from governance.models import ClosureReport
    from plans.models import Location, Plan, Theme, User

    manager = User.objects.filter(role="manager", username__startswith="bench_mgr").order_by(
        "username"
    )[0]
    live = Plan.objects.get(title=config.SHOWCASE_LIVE)
    review = Plan.objects.get(title=config.SHOWCASE_REVIEW)
    return {
        "lead": User.objects.filter(role="quality_lead").order_by("username")[0],
        "manager": manager,
        "member": User.objects.filter(username__startswith="bench_gov").order_by("username")[0],
        "viewer": User.objects.filter(role="viewer", username__startswith="bench_viewer")
        .order_by("username")
        .first(),
        "live": live,
        "review": review,
        "import_plan": Plan.objects.get(title=config.IMPORT_TARGET),
        "report": ClosureReport.objects.filter(plan=review).order_by("-pk").first(),
        "location": Location.objects.filter(staff=manager).order_by("pk").first()
        or Location.objects.order_by("pk").first(),
        "manager_plan": Plan.objects.filter(locations__staff=manager, status="live")
        .order_by("pk")
        .first()
        or live,
        "theme": Theme.objects.order_by("pk").first(),
    }


def page_specs(s: dict) -> list[tuple[str, str, str]]:
    """(label, who, url). "who" is a key of ``subjects()``."""
    live, review, loc, theme = s["live"], s["review"], s["location"], s["theme"]
    return [
        ("Baseline: password change page", "lead", "/accounts/password/"),
        ("Register, unfiltered (quality lead, all plans)", "lead", "/plans/"),
        ("Register, unfiltered (manager, own locations)", "manager", "/plans/"),
        (
            "Register, filtered: live + location + theme, by risk",
            "lead",
            f"/plans/?status=live&location={loc.pk}&theme={theme.pk}&sort=-risk_score",
        ),
        ("Register, filtered: open plans, by risk", "lead", "/plans/?status=open&sort=-risk_score"),
        ("Register, filtered: search “falls”", "lead", "/plans/?q=falls"),
        ("Register, filtered: overdue actions", "lead", "/plans/?overdue=on"),
        ("Register, filtered: stale", "lead", "/plans/?stale=on"),
        ("Register, page 200", "lead", "/plans/?page=200"),
        (
            f"Plan page ({config.SHOWCASE_INDICATORS} indicators × "
            f"{config.SHOWCASE_POINTS} points)",
            "lead",
            live.get_absolute_url(),
        ),
        ("Home: quality lead", "lead", "/"),
        ("Home: manager", "manager", "/"),
        ("Home: governance member", "member", "/"),
        ("Home: viewer", "viewer", "/"),
        ("Governance home: governance member", "member", "/governance/"),
        (
            "Closure report page (live compile)",
            "lead",
            f"/governance/plans/{review.reference}/report/",
        ),
    ]


def _timed(
    client: Client, url: str, requests: int, *, computed: bool, changed_plan: int | None = None
) -> tuple[list, list, object]:
    """``requests`` timed requests: (milliseconds, query counts, last response).
    ``computed``: the data version moves on before each request (``core.freshness``), so
    the page computes its cached figures afresh, as the first view after any change does.
    ``changed_plan``: before each request, the versions a change to that plan moves
    (the plan's, its locations', everything's) move on, as the first view after a change
    to that one plan."""
    from core import freshness

    times, queries = [], []
    response = None
    connection.queries_log.clear()  # a full log would make every capture count 0
    for _ in range(requests):
        if computed:
            freshness.data_changed()
        elif changed_plan is not None:
            freshness.move(freshness.plan_scopes([changed_plan]))
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
        times.append(elapsed * 1000)
        queries.append(len(ctx.captured_queries))
    return times, queries, response


def measure_pages(s: dict | None = None, *, requests: int = 30, warmup: int = 3, log=print) -> list:
    """Each page twice: computed (every cached figure recomputed, the worst case, which
    the budget judges) and cached (nothing changed since the last view)."""
    s = s or subjects()
    results = []
    clients: dict[str, Client] = {}
    for label, who, url in page_specs(s):
        if who not in clients:
            clients[who] = Client()
            clients[who].force_login(s[who])
        client = clients[who]
        for _ in range(warmup):
            response = client.get(url)
        times, queries, response = _timed(client, url, requests, computed=True)
        cached_times, cached_queries, _ = _timed(client, url, requests, computed=False)
        # A change to one plan the page shows: the closure report's own plan, a plan at
        # the manager's location for a manager's pages, the showcase live plan otherwise.
        plan = (
            s["review"]
            if label.startswith("Closure report")
            else s["manager_plan"]
            if who == "manager"
            else s["live"]
        )
        for _ in range(warmup):
            client.get(url)
        change_times, change_queries, _ = _timed(
            client, url, requests, computed=False, changed_plan=plan.pk
        )
        row = {
            "page": label,
            "url": url,
            "status": response.status_code,
            "requests": requests,
            "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "mean_ms": round(statistics.fmean(times), 1),
            "queries": min(queries),
            "queries_max": max(queries),
            "cached_p50_ms": round(percentile(cached_times, 50), 1),
            "cached_p95_ms": round(percentile(cached_times, 95), 1),
            "cached_queries": min(cached_queries),
            "change_p50_ms": round(percentile(change_times, 50), 1),
            "change_p95_ms": round(percentile(change_times, 95), 1),
            "change_queries": min(change_queries),
            "changed_plan": plan.reference,
            "bytes": len(response.content),
        }
        results.append(row)
        log(
            f"    {label}: p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, {row['queries']} "
            f"queries; cached p50 {row['cached_p50_ms']} ms, {row['cached_queries']} queries; "
            f"after a change to {plan.reference} p50 {row['change_p50_ms']} ms, "
            f"{row['change_queries']} queries"
        )
    return results


def slowest_queries(url: str, user, top: int = 3) -> list[dict]:
    """The slowest statements of one request (for the report of a missed budget)."""
    client = Client()
    client.force_login(user)
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    rows = sorted(ctx.captured_queries, key=lambda q: float(q["time"]), reverse=True)[:top]
    return [{"ms": round(float(q["time"]) * 1000, 1), "sql": q["sql"][:1500]} for q in rows]


# --- Sweeps ----------------------------------------------------------------------------


def live_and_monitoring() -> dict:
    from plans.models import Indicator, Plan

    return {
        "live_plans": Plan.objects.filter(status="live").count(),
        "monitoring_plans": Plan.objects.filter(status="monitoring").count(),
        "indicators_on_them": Indicator.objects.filter(
            plan__status__in=["live", "monitoring"]
        ).count(),
    }


def measure_sweeps(*, log=print) -> dict:
    from core.jobs import JOBS

    runs = {}
    for run in ("first", "repeat"):
        rows = []
        for job in JOBS:
            with tasks_counted() as queued, queries_counted() as ctx:
                started = time.perf_counter()
                outcome = job.run()
                elapsed = time.perf_counter() - started
            rows.append(
                {
                    "job": job.name,
                    "seconds": round(elapsed, 2),
                    "queries": ctx["n"],
                    "tasks_queued": sum(queued.values()),
                    "result": str(outcome)[:160],
                }
            )
            log(f"    {run} {job.name}: {elapsed:.2f} s, {ctx['n']} queries: {outcome}")
        runs[run] = {
            "queries_counted_by": "execute_wrapper",
            "jobs": rows,
            "total_seconds": round(sum(r["seconds"] for r in rows), 2),
        }
    runs["scope"] = live_and_monitoring()
    return runs


# --- SPC engine --------------------------------------------------------------------------


def measure_spc(n: int, *, seed: int = 2024) -> dict:
    """The engine and the frozen engine it replaced on the same series, same run."""
    from scripts import bench_spc

    return bench_spc.compare_engines(n, seed)


# --- Import ----------------------------------------------------------------------------


def import_csv(plan, rows: int) -> bytes:
    """``rows`` valid rows over the plan's indicators, one date per indicator per day."""
    import csv

    indicators = list(plan.indicators.order_by("position", "pk"))
    today = timezone.localdate()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["indicator", "date", "numerator", "denominator", "value", "location", "notes"])
    for i in range(rows):
        ind = indicators[i % len(indicators)]
        day = today - datetime.timedelta(days=i // len(indicators) + 1)
        if ind.measure_type == "proportion":
            writer.writerow([ind.name, day.isoformat(), 18 + i % 3, 20, "", "", "bench"])
        else:
            writer.writerow([ind.name, day.isoformat(), "", "", f"{2 + i % 5}", "", "bench"])
    return out.getvalue().encode()


def measure_import(plan, user, rows: int) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from audits import services
    from audits.models import ImportBatch, Measurement

    Measurement.objects.filter(indicator__plan=plan).delete()  # a repeat run starts clean
    data = import_csv(plan, rows)
    with tasks_counted():
        batch = services.start_import(
            plan=plan, by=user, upload=SimpleUploadedFile("bench.csv", data), kind="csv"
        )
        started = time.perf_counter()
        with queries_counted() as vq:
            batch = services.validate_import(batch_id=batch.pk)
        validate_s = time.perf_counter() - started
        if batch.status != ImportBatch.Status.VALID:
            return {"rows": rows, "error": f"validation: {batch.status} {batch.errors[:3]}"}
        services.queue_import_commit(batch=batch, by=user)
        started = time.perf_counter()
        with queries_counted() as cq:
            batch = services.commit_import(batch_id=batch.pk, by_id=user.pk)
        commit_s = time.perf_counter() - started
    imported = Measurement.objects.filter(import_batch=batch).count()
    return {
        "rows": rows,
        "status": batch.status,
        "imported": imported,
        "validate_seconds": round(validate_s, 2),
        "validate_queries": vq["n"],
        "commit_seconds": round(commit_s, 2),
        "commit_queries": cq["n"],
        "total_seconds": round(validate_s + commit_s, 2),
    }


# --- Closure report and PDF --------------------------------------------------------------


def measure_pdf(plan, report, *, runs: int = 3) -> dict:
    from governance import pdf, reports
    from qip_portal import closure

    compile_times, render_times = [], []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        with queries_counted() as ctx:
            content = closure.compile_report(plan)
            body = reports.render_body(content)
        compile_times.append(time.perf_counter() - started)
        compile_queries = ctx["n"]
        started = time.perf_counter()
        data = pdf.render_pdf(body_html=report.content_html if report else body, title="Bench")
        render_times.append(time.perf_counter() - started)
        size = len(data)
    return {
        "runs": runs,
        "compile_ms_p50": round(statistics.median(compile_times) * 1000),
        "compile_queries": compile_queries,
        "pdf_seconds_p50": round(statistics.median(render_times), 2),
        "pdf_seconds_max": round(max(render_times), 2),
        "pdf_bytes": size,
        "html_chars": len(report.content_html if report else body),
    }


def measure_all(scale: config.Scale, *, requests: int = 30, log=print) -> dict:
    s = subjects()
    out: dict = {"loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
    log("  pages")
    out["pages"] = measure_pages(s, requests=requests, log=log)
    budget_ms = 300
    out["slow_queries"] = {
        row["page"]: slowest_queries(row["url"], s[_who(row["page"], s)])
        for row in out["pages"]
        if row["p95_ms"] > budget_ms
    }
    log("  sweeps")
    out["sweeps"] = measure_sweeps(log=log)
    log("  SPC engine")
    out["spc"] = measure_spc(scale.spc_series)
    log(f"    {out['spc']}")
    log("  import")
    out["import"] = measure_import(s["import_plan"], s["lead"], scale.import_rows)
    log(f"    {out['import']}")
    out["loadavg_at_end_of_sweeps"] = [round(x, 2) for x in os.getloadavg()]
    log("  closure report PDF")
    out["pdf"] = measure_pdf(s["review"], s["report"])
    log(f"    {out['pdf']}")
    return out


def _who(label: str, s: dict) -> str:
    for spec_label, who, _url in page_specs(s):
        if spec_label == label:
            return who
    return "lead"
