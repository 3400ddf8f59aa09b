"""The benchmark harness (scripts/bench, `make bench`) still works: its generator fills
the test database at the smallest scale, and every measurement, the report and the
load-test client run against it, with few requests. Figures are not checked here (CI
machines vary); that each step completes and every page answers 200 is."""

import json

import pytest
from django.db import connection

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


@pytest.mark.django_db
def test_generate_measure_and_report(tmp_path):
    dataset = _generate()
    quiet = lambda *a: None  # noqa: E731
    pages = measure.measure_pages(requests=2, warmup=1, log=quiet)
    assert [p["page"] for p in pages if p["status"] != 200] == []
    assert all(p["queries"] > 0 for p in pages)

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

    results = tmp_path / "results"
    results.mkdir()
    (results / "tiny.json").write_text(
        json.dumps(
            {
                "scale": "tiny",
                "factor": 0.001,
                "date": "today",
                "machine": "test",
                "commit": "test",
                "database": "test",
                "dataset": dataset,
                "measurements": {
                    "pages": pages,
                    "sweeps": sweeps,
                    "spc": spc,
                    "import": imported,
                    "pdf": pdf,
                },
            },
            default=str,
        )
    )
    text = report.render(results)
    assert "## Pages" in text and "## Nightly sweeps" in text and "Import of 20" in text


@pytest.mark.django_db(transaction=True)
def test_load_client_signs_in_and_browses(live_server):
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


def test_load_client_starts_afresh_after_a_failed_request():
    session = loadtest.Session(loadtest.free_port(), timeout=1)  # nothing listens there
    with pytest.raises(OSError):
        session.request("GET", "/")
    assert session.conn is None
