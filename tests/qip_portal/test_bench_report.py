"""The bench report judges issue 19's budgets (scripts/bench/report.py): a pure function
of the results dicts, checked here on small hand-made ones."""

import json

from scripts.bench import loadtest, report


def _page(name, p50, p95, queries=8, cached=2, status=200):
    return {
        "page": name,
        "status": status,
        "p50_ms": p50,
        "p95_ms": p95,
        "queries": queries,
        "cached_queries": cached,
        "queries_max": queries,
        "requests": 30,
        "cached_p50_ms": p50 / 4,
        "cached_p95_ms": p95 / 4,
        "url": "/",
    }


def _alone(page, rps, users=10, errors=0):
    return {
        "page": page,
        "users": users,
        "seconds": 10.0,
        "requests": int(rps * 10),
        "rps": rps,
        "p50_ms": 100,
        "p95_ms": 200,
        "errors": errors,
        "share_of_baseline": round(rps / 100.0, 3),
    }


def _sweeps(rows, scope):
    """rows: job -> ((first queries, first tasks), (repeat queries, repeat tasks))."""

    def run(i):
        jobs = [
            {"job": job, "seconds": 1.0, "queries": q[i][0], "tasks_queued": q[i][1], "result": ""}
            for job, q in rows.items()
        ]
        return {"jobs": jobs, "total_seconds": float(len(jobs)), "queries_counted_by": "x"}

    return {"first": run(0), "repeat": run(1), "scope": scope}


def _run(scale="full", *, commit="abc1234", plan_rps=40.0, users_signed_in=50, sweeps=None):
    alone = [_alone(page, 60.0) for page in report.ALONE_PAGES]
    alone = [_alone("plan page", plan_rps)] + [r for r in alone if r["page"] != "plan page"]
    return {
        "scale": scale,
        "factor": 1.0,
        "date": "today",
        "machine": "test",
        "commit": commit,
        "database": "test",
        "measurements": {
            "pages": [
                _page("Baseline: password change page", 10.0, 20.0, queries=2, cached=2),
                _page("Register, unfiltered (quality lead, all plans)", 30.0, 120.0),
                _page("Plan page (5 indicators × 60 points)", 50.0, 310.0, queries=26),
            ],
            "spc": {
                "series": 600,
                "points_per_series": 36,
                "series_per_second": 9000,
                "reference_series_per_second": 1000,
                "ratio": 9.0,
                "wall_ratio": 8.8,
                "seconds": 0.07,
                "methods": {"xmr": 480, "p_chart": 120},
            },
            "sweeps": sweeps
            or _sweeps(
                {
                    "batched": ((40, 0), (5, 0)),
                    "per_task": ((2000, 1000), (10, 0)),
                },
                {"live_plans": 9000, "monitoring_plans": 1000},
            ),
        },
        "load": {
            "users": 50,
            "signed_in": users_signed_in,
            "login_failures": [] if users_signed_in == 50 else ["bench_gov1 (try 4 of 4): x"],
            "rps": 60.0,
            "requests": 600,
            "seconds": 10.0,
            "p50_ms": 100,
            "p95_ms": 250,
            "errors": 0,
            "error_examples": [],
            "gunicorn": "g",
            "worker": "w",
            "redis": "r",
            "ceiling": {
                "rps": 100.0,
                "p95_ms": 100,
                "p50_ms": 50,
                "users": 50,
                "seconds": 5.0,
                "errors": 0,
            },
            "alone": alone,
            "pages": [],
        },
    }


def test_judge_reads_every_budget_as_a_ratio_to_the_trivial_page():
    j = report.judge(_run())
    alone = {r["page"]: r for r in j["alone"]}
    assert set(alone) == set(report.ALONE_PAGES)
    # Cost alone = trivial throughput / page's: 100 / 40 = 2.5 > 2 fails; 100 / 60 passes.
    assert alone["plan page"]["cost"] == 2.5 and alone["plan page"]["ok"] is False
    assert alone["register search"]["cost"] == 1.67 and alone["register search"]["ok"] is True
    pages = {r["page"][:8]: r for r in j["pages"]}
    # First view = computed p50 / baseline p50: 30 / 10 = 3 passes, 50 / 10 = 5 fails.
    assert pages["Register"]["first_view"] == 3.0 and pages["Register"]["first_view_ok"]
    assert pages["Plan pag"]["first_view"] == 5.0 and not pages["Plan pag"]["first_view_ok"]
    # p95 under 300 ms, absolute, with its ratio to the baseline's p95 beside it.
    assert pages["Register"]["p95_ok"] and not pages["Plan pag"]["p95_ok"]
    assert pages["Plan pag"]["p95_ratio"] == 15.5
    # No smaller-scale run: the query-count verdict is not judged.
    assert pages["Register"]["queries_ok"] is None
    mix = {r["what"]: r for r in j["mix"]}
    assert mix["throughput ÷ trivial page's"]["ok"]  # 60 / 100 = 0.6 >= 0.5
    assert mix["p95 ÷ trivial page's p95"]["ok"]  # 250 / 100 = 2.5 <= 3
    assert mix["errors"]["ok"] and mix["users signed in"]["ok"]
    assert j["spc"]["ok"] and j["sweeps"]["ok"]


def test_judge_fails_the_mix_when_a_user_did_not_sign_in():
    j = report.judge(_run(users_signed_in=49))
    assert j["mix_judged"] is False
    assert all(r["ok"] is False for r in j["mix"])
    # Older results recorded only the failures (each twice) and the active users.
    load = {"users": 50, "active_users": 31, "login_failures": ["a: timed out", "a"]}
    assert report.signed_in(load) == (31, 50)
    assert report.signed_in({"users": 50, "login_failures": []}) == (50, 50)


def test_query_counts_and_sweep_growth_against_a_smaller_scale():
    small = _run(
        "small",
        sweeps=_sweeps(
            {"batched": ((38, 0), (5, 0)), "per_task": ((20, 10), (10, 0))},
            {"live_plans": 90, "monitoring_plans": 10},
        ),
    )
    small["measurements"]["pages"][2]["queries"] = 25  # the plan page grew with the data
    j = report.judge(_run(), smaller=small)
    pages = {r["page"][:8]: r for r in j["pages"]}
    assert pages["Register"]["queries_ok"] is True
    assert pages["Plan pag"]["queries_ok"] is False
    assert j["smaller"] == {"scale": "small", "commit": "abc1234", "same_commit": True}
    growth = {r["job"]: r for r in j["sweep_growth"]}
    # 2 more queries over 9,900 more plans: batched. (2000 - 20) / (1000 - 10) = 2 per task.
    assert growth["batched"]["ok"] is True and growth["batched"]["per_row"] == 0.0
    assert growth["per_task"]["ok"] is False and growth["per_task"]["per_row"] == 2.0
    assert "per tasks queued" in growth["per_task"]["basis"]


def test_sweep_growth_within_one_run_without_a_smaller_scale():
    growth = {r["job"]: r for r in report.sweep_growth(_run())}
    # (2000 - 10) / (1000 - 0) queries per task between the first run and the repeat.
    assert growth["per_task"]["per_row"] == 1.99 and growth["per_task"]["ok"] is False
    assert growth["batched"]["ok"] is None  # it queued nothing: not judged this way


def test_before_column_maps_the_pages_measured_together_before(tmp_path):
    before = _run(commit="5100383")
    before["load"]["alone"] = [_alone("home", 50.0), _alone("register filtered", 25.0)]
    j = report.judge(_run(), before=before)
    alone = {r["page"]: r for r in j["alone"]}
    assert alone["home: viewer"]["before"] == 2.0
    assert alone[loadtest.SEARCH]["before"] == 4.0
    assert alone[loadtest.SEARCH]["before_page"] == "register filtered"
    assert alone["plan page"]["before"] is None

    # The report shows every budget with a verdict, and the before column.
    results = tmp_path / "results"
    results.mkdir()
    (results / "full.json").write_text(json.dumps(_run()))
    (results / "full-before-issue19.json").write_text(json.dumps(before))
    small = _run(
        "small",
        sweeps=_sweeps(
            {"batched": ((38, 0), (5, 0)), "per_task": ((20, 10), (10, 0))},
            {"live_plans": 90, "monitoring_plans": 10},
        ),
    )
    (results / "small.json").write_text(json.dumps(small))
    text = report.render(results)
    section = text.split("## Issue 19's budgets")[1].split("\n## ")[0]
    summary = section.split("| budget | this run | verdict |")[1].split("\n\n")[0]
    assert summary.count("\n| ") == 8
    for line in summary.splitlines()[2:]:
        assert "**pass**" in line or "**FAIL**" in line, line
    assert "| home: viewer | 10 | 60.0 | 200 | 0 | 1.67 | 2.0 (home) | **pass** |" in section
    assert "before: issue 10, commit 5100383" in section


def test_a_run_can_head_the_report_at_its_own_scale(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "full.json").write_text(json.dumps(_run()))
    (results / "small.json").write_text(json.dumps(_run("small", commit="def5678")))
    assert "- **Scale**: full" in report.render(results)
    text = report.render(results, headline="small")
    assert "- **Scale**: small" in text and "- **Commit**: def5678" in text
    assert "no smaller-scale run to compare with" in text


def test_first_view_is_judged_after_a_change_to_one_plan_when_measured():
    """The budget is the first view after a change to that plan: a run that measured it
    (``change_p50_ms``) is judged on it, the change to everything shown beside it."""
    run = _run()
    plan_page = run["measurements"]["pages"][2]
    plan_page.update({"change_p50_ms": 35.0, "changed_plan": "QIP-2026-0001"})
    j = report.judge(run)
    row = {r["page"][:8]: r for r in j["pages"]}["Plan pag"]
    assert row["first_view"] == 3.5 and row["first_view_ok"]  # 35 / 10
    assert row["everything_changed"] == 5.0 and row["one_plan"]
    assert row["changed_plan"] == "QIP-2026-0001"
