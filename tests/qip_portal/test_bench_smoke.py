"""The benchmark harness (scripts/bench, `make bench`) still works: its generator fills
the test database at the smallest scale, and every measurement, the report and the
load-test client run against it, with few requests. Figures are not checked here (CI
machines vary); that each step completes and every page answers 200 is."""

import json

import pytest
from django.db import connection

from scripts.bench import __main__ as bench_main
from scripts.bench import config, generate, loadtest, measure, report


@pytest.fixture(autouse=True)
def fast_and_private(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"


def _generate():
    result = generate.generate(config.scale("tiny"), log=lambda *a: None)
    counts = result["counts"]
    assert counts["plans.Plan"] >= 20
    assert counts["audits.Measurement"] >= 1000
    assert counts["audits.HistoricalMeasurement"] >= counts["audits.Measurement"]
    assert counts["plans.HistoricalPlan"] > counts["plans.Plan"]
    return result


def _results(tmp_path, **run):
    """A results folder holding one main run ("tiny.json") of ``run``'s parts."""
    results = tmp_path / "results"
    results.mkdir()
    header = {"scale": "tiny", "factor": 0.001, "date": "today", "machine": "test"}
    header |= {"commit": "test", "database": "test"}
    (results / "tiny.json").write_text(json.dumps(header | run, default=str))
    return results


@pytest.mark.django_db
def test_generate_measure_and_report(tmp_path):
    dataset = _generate()
    quiet = lambda *a: None  # noqa: E731
    pages = measure.measure_pages(requests=2, warmup=1, log=quiet)
    assert [p["page"] for p in pages if p["status"] != 200] == []
    assert all(p["queries"] > 0 for p in pages)
    # Computed means computed: the cached figures are recomputed for every timed request.
    by_page = {p["page"]: p for p in pages}
    for page in ("Home: quality lead", "Closure report page (live compile)"):
        assert by_page[page]["cached_queries"] < by_page[page]["queries"], page

    sweeps = measure.measure_sweeps(log=quiet)
    assert {r["job"] for r in sweeps["first"]["jobs"]} >= {
        "plans_overdue_actions",
        "audits_reaudits_due",
        "audits_ready_for_review",
    }
    assert sweeps["scope"]["live_plans"] > 0

    spc = measure.measure_spc(30)
    assert spc["series"] == 30 and spc["series_per_second"] > 0

    s = measure.subjects()
    imported = measure.measure_import(s["import_plan"], s["lead"], 20)
    assert imported.get("imported") == 20, imported

    pdf = measure.measure_pdf(s["review"], s["report"], runs=1)
    assert pdf["pdf_bytes"] > 1000

    results = _results(
        tmp_path,
        dataset=dataset,
        measurements={
            "pages": pages,
            "sweeps": sweeps,
            "spc": spc,
            "import": imported,
            "pdf": pdf,
        },
    )
    text = report.render(results)
    assert "## Pages" in text and "## Nightly sweeps" in text and "Import of 20" in text
    assert "| cached p50 ms |" in text


def test_live_plans_option_sets_the_status_mix():
    n = config.scale("full").plans
    # Without the option: STATUS_MIX as it always was (same seed, same data).
    default = generate.plan_statuses(n)
    assert len(default) == n
    for status, share in generate.STATUS_MIX:
        assert default.count(status) == round(n * share)
    # With it: exactly N live, the rest shared in STATUS_MIX's proportions.
    mixed = generate.plan_statuses(n, 10_000)
    assert len(mixed) == n and mixed.count("live") == 10_000
    assert mixed.count("closed") == 5937 and mixed.count("draft") == 938
    with pytest.raises(SystemExit):
        bench_main.main(["--scale", "tiny", "--live-plans", str(n)])  # more than the scale
    assert bench_main.results_name("full") == "full.json"
    assert bench_main.results_name("full", 10_000, True) == "full-live10000.json"
    assert bench_main.results_name("full", None, True) == "full-sweeps.json"


@pytest.mark.django_db
def test_live_plans_and_sweeps_only_section(tmp_path):
    from plans.models import Plan

    quiet = lambda *a: None  # noqa: E731
    live = 12  # of the tiny scale's 20 plans; the showcase and import plans add two more
    dataset = generate.generate(config.scale("tiny"), live_plans=live, log=quiet)
    assert dataset["live_plans_requested"] == live
    assert Plan.objects.filter(status="live").count() == live + 2
    assert dataset["plans_by_status"]["live"] == live + 2
    assert sum(dataset["plans_by_status"].values()) == Plan.objects.count()

    sweeps = measure.measure_sweeps(log=quiet)
    assert sweeps["scope"]["live_plans"] == live + 2
    # Every job reads the database, but the weekly digest outside Monday 07:30 (its day).
    assert all(
        r["queries"] > 0 for r in sweeps["first"]["jobs"] if "go out on Mondays" not in r["result"]
    )

    results = tmp_path / "results"
    results.mkdir()
    run = {
        "scale": "tiny",
        "factor": 0.001,
        "date": "today",
        "machine": "test",
        "commit": "test",
        "database": "test",
        "live_plans": live,
        "only_sweeps": True,
        "dataset": dataset,
        "measurements": {"sweeps": sweeps},
    }
    name = bench_main.results_name("tiny", live, True)
    (results / name).write_text(json.dumps(run, default=str))
    text = report.render(results)  # a sweeps-only file alone
    assert f"## Nightly sweeps with {live} live plans" in text
    assert f"Live plans: {live + 2}; monitoring plans: " in text
    assert "| **all jobs** |" in text
    for job in sweeps["first"]["jobs"]:
        assert f"| {job['job']} | {job['seconds']} | {job['queries']:,} |" in text

    # Beside a main results file: the main report as before, plus the section.
    main_run = {**run, "measurements": {"sweeps": sweeps}}
    del main_run["live_plans"], main_run["only_sweeps"]
    (results / "tiny.json").write_text(json.dumps(main_run, default=str))
    text = report.render(results)
    assert "## Nightly sweeps (every job" in text
    assert text.index("## Nightly sweeps (every job") < text.index(
        f"## Nightly sweeps with {live} live plans"
    )
    (results / name).unlink()
    assert "live plans\n" not in report.render(results).split("## Nightly sweeps (every")[1]


@pytest.mark.django_db(transaction=True)
def test_load_client_signs_in_and_browses(live_server, tmp_path):
    _generate()
    port = int(live_server.url.rsplit(":", 1)[1])
    people, data = loadtest.people_and_data(4)
    if connection.vendor == "sqlite":
        # The live server's threads share one in-memory SQLite database, which refuses
        # concurrent writes (sign-in writes the session): one user there.
        people = people[:1]
    raw = loadtest.run_users(port, people, data, seconds=1.5)
    summary = loadtest.summarise(raw, len(people))
    assert raw["login_failures"] == []
    assert raw["active_users"] == len(people)
    assert summary["requests"] > 0
    assert summary["errors"] == 0, summary["error_examples"]

    # Signed in once, the sessions serve every later run: the mix, the trivial page
    # alone (the ceiling) and each page alone, with no second sign-in.
    sessions, failures = loadtest.sign_in(port, people)
    assert failures == [] and all(sessions)
    ceiling = loadtest.summarise(
        loadtest.run_users(
            port, people, data, seconds=1, only=loadtest.BASELINE, sessions=sessions
        ),
        len(people),
    )
    assert ceiling["requests"] > 0 and ceiling["errors"] == 0
    assert {p["page"] for p in ceiling["pages"]} == {loadtest.BASELINE}
    alone = loadtest.pages_alone(port, people, data, sessions, 0.5, ceiling["rps"])
    offered = {
        page for u, role in people for page, _, _ in loadtest.journeys_for(role, dict(data, who=u))
    }
    assert {row["page"] for row in alone} == offered - {loadtest.BASELINE}
    for row in alone:
        assert row["users"] >= 1 and row["requests"] > 0 and row["errors"] == 0, row
        assert row["share_of_baseline"] == round(row["rps"] / ceiling["rps"], 3)
        # Warm: an untimed warm-up pass first, whose URLs the timed pass requests again.
        assert row["warmup_requests"] > 0 and row["distinct_urls"] >= 1, row
    # The timed pass of a warm page: each user's warm-up URLs again, in turn, and no other.
    again = {0: ["/accounts/password/?a", "/accounts/password/?b"]}
    replayed = loadtest.run_users(
        port,
        people[:1],
        data,
        seconds=0.5,
        only=loadtest.BASELINE,
        sessions=sessions,
        replay=again,
    )
    assert set(replayed["urls"][0]) == set(again[0]) and replayed["samples"][loadtest.BASELINE]
    # A user who cannot sign in is retried, then reported (the run fails), never dropped.
    lost, failed = loadtest.sign_in(port, [("no-such-user", "viewer")], tries=2, log=print)
    assert lost == [None] and len(failed) == 1 and "no-such-user (try 2 of 2)" in failed[0]
    # A page no user's journeys include: nobody requests it, nothing breaks.
    nobody = loadtest.run_users(
        port, people, data, seconds=0.3, only="no such page", sessions=sessions
    )
    assert nobody["active_users"] == 0 and not nobody["samples"]

    # The report shows the mix page by page and each page alone against the ceiling.
    load = {
        **summary,
        "ceiling": ceiling,
        "alone": alone,
        "gunicorn": "g",
        "worker": "w",
        "redis": "r",
    }
    results = _results(tmp_path, dataset={"counts": {}, "seconds": {}}, measurements={}, load=load)
    text = report.render(results)
    assert "**Each page alone**" in text and "relative capacity" not in text
    for row in alone:
        assert f"| {row['page']} | {row['users']} | " in text
        assert f"| {row['share_of_baseline']} |" in text


def test_load_client_starts_afresh_after_a_failed_request():
    session = loadtest.Session(loadtest.free_port(), timeout=1)  # nothing listens there
    with pytest.raises(OSError):
        session.request("GET", "/")
    assert session.conn is None


def test_mix_costs_weigh_each_page_by_its_share_and_its_throughput_alone():
    load = {
        "pages": [
            {"page": loadtest.BASELINE, "requests": 100},
            {"page": "plan page", "requests": 300},
        ],
        "ceiling": {"rps": 200.0},
        "alone": [{"page": "plan page", "rps": 20.0}],
    }
    costs = report.mix_costs(load)
    # 1 / (0.25 / 200 + 0.75 / 20) = 25.8 requests/s; the plan page takes 0.0375 of 0.03875.
    assert costs["predicted_rps"] == 25.8
    assert costs["pages"]["plan page"]["requests"] == 0.75
    assert round(costs["pages"]["plan page"]["time"], 3) == 0.968
    assert round(costs["pages"][loadtest.BASELINE]["time"], 3) == 0.032
    # A page never measured alone: no prediction rather than a wrong one.
    load["alone"] = []
    assert report.mix_costs(load)["predicted_rps"] is None


@pytest.mark.redis
def test_emptying_the_cache_between_runs_leaves_the_workers_queues_alone(private_redis_url):
    """Each page alone starts with no cached figures, as the mix did; the Celery
    worker's queue and bindings share the database and must survive."""
    import redis
    from django.core.cache.backends.redis import RedisCache

    url = private_redis_url  # a database of its own, empty
    client = redis.Redis.from_url(url)
    cache = RedisCache(url, {})
    cache.set("qip:data-version", "v1")
    cache.set("qip:derived:plan-figures:1:v1", {"n": 1})
    client.sadd("_kombu.binding.celery", "celery")
    client.lpush("celery", "a queued task")
    assert loadtest.empty_cache(url) == 2
    assert cache.get("qip:data-version") is None
    assert cache.get("qip:derived:plan-figures:1:v1") is None
    assert client.smembers("_kombu.binding.celery") == {b"celery"}
    assert client.lrange("celery", 0, -1) == [b"a queued task"]
