"""Imports whose task was lost or died (core/stuck.py): the upload answers while the
broker is down, the "recover_stuck_work" sweep queues a lost task again or fails a dead
commit, the page stops saying it "updates by itself" once nothing runs, and "Try again"
re-runs the batch from its stored file and imports in full."""

from __future__ import annotations

import datetime
import shutil

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audits import services, sweeps
from audits.models import ImportBatch, Measurement
from audits.services import imports as import_services
from core import stuck
from tests.stuck import Broker, fake_broker, later

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(monkeypatch, settings) -> Broker:
    return fake_broker(monkeypatch, settings)


QUEUED, STARTED = 60, 120  # small thresholds (seconds), so the tests move the clock little
INDICATOR = "Escalated within 24h"


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "private-media"
    settings.STUCK_QUEUED_SECONDS = QUEUED
    settings.STUCK_STARTED_SECONDS = STARTED


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run code as a request or a job does: its after-commit queueing happens."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _csv(plan, n=3) -> bytes:
    lines = ["indicator,date,numerator,denominator"]
    lines += [
        f"{INDICATOR},{plan.opened_on + datetime.timedelta(days=i)},{17 + i % 3},20"
        for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


def _upload(client, plan, committed, content=None):
    with committed():
        response = client.post(
            reverse("audits:import", args=[plan.reference]),
            {"upload": SimpleUploadedFile("results.csv", content or _csv(plan))},
        )
    assert response.status_code == 302, response.content.decode()[:1000]
    return ImportBatch.objects.latest("pk")


def _page(client, batch, user) -> str:
    client.force_login(user)  # the clock moved: a fresh session
    response = client.get(reverse("audits:import_detail", args=[batch.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _sweep(committed) -> stuck.Recovered:
    with committed():
        return sweeps.recover_stuck_imports()


def _valid_batch(client, plan, manager, committed, broker):
    client.force_login(manager)
    batch = _upload(client, plan, committed)
    broker.run()
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.VALID
    return batch


def _confirm(client, batch, committed):
    with committed():
        response = client.post(reverse("audits:import_commit", args=[batch.pk]))
    assert response.status_code == 302
    batch.refresh_from_db()
    return batch


# --- The broker is down, or loses the task --------------------------------------------


def test_an_upload_while_the_broker_is_down_is_kept_and_checked_once_the_sweep_finds_it(
    client, plan, manager, broker, committed
):
    broker.down = True
    client.force_login(manager)
    batch = _upload(client, plan, committed)  # no error page: the file and batch are kept
    assert batch.status == ImportBatch.Status.VALIDATING and batch.started_at is None
    page = _page(client, batch, manager)
    assert "Checking 0 of ? rows" in page and "updates by itself" in page
    broker.down = False
    # Not yet given up on: the sweep leaves it alone.
    assert _sweep(committed) == stuck.Recovered()
    assert broker.sent == []
    with later(QUEUED + 1):
        assert _sweep(committed) == stuck.Recovered(requeued=1)
        assert broker.names() == ["audits.tasks.validate_import_task"]
        broker.run()
        batch.refresh_from_db()
        assert batch.status == ImportBatch.Status.VALID and batch.total_rows == 3
        assert "Import 3 results" in _page(client, batch, manager)
        assert _sweep(committed) == stuck.Recovered()  # and again: nothing more


def test_a_confirmed_import_whose_task_was_lost_is_queued_again_and_imports_in_full(
    client, plan, manager, broker, committed
):
    batch = _valid_batch(client, plan, manager, committed, broker)
    broker.down = True
    batch = _confirm(client, batch, committed)
    assert batch.status == ImportBatch.Status.COMMITTING and batch.confirmed_by == manager
    broker.down = False
    with later(QUEUED + 1):
        assert _sweep(committed) == stuck.Recovered(requeued=1)
        broker.run()
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.COMMITTED
    assert Measurement.objects.filter(import_batch=batch, recorded_by=manager).count() == 3


# --- A worker dies mid-task ------------------------------------------------------------


def _dies(batch, broker):
    """Run the queued task with the stored file out of reach: it raises mid-task, as a
    worker that dies does, leaving the batch as it was when it started."""
    path = batch.file.path
    shutil.move(path, path + ".away")
    try:
        with pytest.raises(FileNotFoundError):
            broker.run()
    finally:
        shutil.move(path + ".away", path)
    broker.lose()


def test_a_commit_whose_worker_died_is_failed_then_tried_again_and_imports_in_full(
    client, plan, manager, broker, committed
):
    batch = _valid_batch(client, plan, manager, committed, broker)
    batch = _confirm(client, batch, committed)
    _dies(batch, broker)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.COMMITTING and batch.started_at is not None
    assert not Measurement.objects.exists()
    # Within the threshold it may still be running: the page polls, the sweep waits.
    assert "updates by itself" in _page(client, batch, manager)
    assert _sweep(committed) == stuck.Recovered()
    with later(STARTED + 1):
        page = _page(client, batch, manager)
        assert ImportBatch.STOPPED in page and "Try again" in page
        assert "updates by itself" not in page and "hx-get" not in page and "Stopped" in page
        partial = client.get(
            reverse("audits:import_detail", args=[batch.pk]) + "?partial=1",
            headers={"HX-Request": "true"},
        )
        assert partial["HX-Refresh"] == "true"  # the poll stops: the whole page is shown
        # A started commit is not redone behind the person's back: it is failed.
        assert _sweep(committed) == stuck.Recovered(failed=1)
        assert broker.sent == []
        batch.refresh_from_db()
        assert batch.status == ImportBatch.Status.FAILED and batch.failure == ImportBatch.STOPPED
        record = batch.history.latest()
        assert (record.status, record.history_change_reason) == (
            "failed",
            "Stopped before finishing",
        )
        assert _sweep(committed) == stuck.Recovered()  # twice: nothing more
        page = _page(client, batch, manager)
        assert ImportBatch.STOPPED in page and "updates by itself" not in page
        # Try again: every row checked again and imported, in full.
        with committed():
            response = client.post(reverse("audits:import_retry", args=[batch.pk]))
        assert response.status_code == 302
        batch.refresh_from_db()
        assert batch.status == ImportBatch.Status.COMMITTING and batch.failure == ""
        assert "updates by itself" in _page(client, batch, manager)
        broker.run()
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.COMMITTED
    assert Measurement.objects.filter(import_batch=batch).count() == 3
    assert batch.history.latest().history_user == manager


def test_a_check_that_kills_its_worker_each_time_is_failed_after_three_starts(
    client, plan, manager, broker, committed
):
    client.force_login(manager)
    batch = _upload(client, plan, committed)
    for start in range(1, stuck.MAX_STARTS + 1):
        _dies(batch, broker)
        batch.refresh_from_db()
        assert batch.attempts == start and batch.started_at is not None
        with later(STARTED + 1):
            recovered = _sweep(committed)
            batch.refresh_from_db()
            if start < stuck.MAX_STARTS:
                # A check changes nothing: queued again, as if it had never started.
                assert recovered == stuck.Recovered(requeued=1)
                assert batch.status == ImportBatch.Status.VALIDATING
                assert batch.started_at is None and broker.sent
            else:
                assert recovered == stuck.Recovered(failed=1)
                assert batch.status == ImportBatch.Status.FAILED and broker.sent == []
    # Try again re-checks the stored file; the preview follows, then the import.
    with committed():
        client.post(reverse("audits:import_retry", args=[batch.pk]))
    broker.run()
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.VALID and batch.attempts == 1
    _confirm(client, batch, committed)
    broker.run()
    assert Measurement.objects.filter(import_batch=batch).count() == 3


def test_a_run_given_up_on_cannot_write_over_the_newer_run(client, plan, manager, broker):
    """A slow check, still alive when the sweep queued another: its progress and its
    result are refused, so the newer run's stands."""
    client.force_login(manager)
    batch = services.start_import(
        plan=plan, by=manager, upload=SimpleUploadedFile("r.csv", _csv(plan)), kind="csv"
    )
    slow = import_services._claim(batch.pk, ImportBatch.Status.VALIDATING)
    with later(STARTED + 1):
        assert sweeps.recover_stuck_imports() == stuck.Recovered(requeued=1)
        services.validate_import(batch_id=batch.pk)  # the newer run: done
        batch.refresh_from_db()
        assert batch.status == ImportBatch.Status.VALID and batch.attempts == slow + 1
        import_services._set_progress(batch.pk, slow, processed_rows=1)
        import_services._finish_run(
            batch.pk,
            slow,
            expected=ImportBatch.Status.VALIDATING,
            by=manager,
            status=ImportBatch.Status.INVALID,
            reason="stale",
            errors=[{"row": 2, "column": "", "message": "stale"}],
        )
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.VALID and batch.errors == []
    assert batch.processed_rows == 3
    # And a second delivery of the task finds nothing to do.
    assert services.validate_import(batch_id=batch.pk).attempts == slow + 1


def test_the_sweep_leaves_every_state_alone_within_its_threshold(
    client, plan, manager, broker, committed
):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        t0 = timezone.now()
        client.force_login(manager)
        queued = _upload(client, plan, committed)  # checking, never started
        started = _upload(client, plan, committed)  # checking, started
        broker.lose()
        import_services._claim(started.pk, ImportBatch.Status.VALIDATING)
        clock.move_to(t0 + datetime.timedelta(seconds=QUEUED - 1))
        assert sweeps.recover_stuck_imports() == stuck.Recovered()
        clock.move_to(t0 + datetime.timedelta(seconds=QUEUED + 1))
        # The lost task is queued again; the started check may still be working.
        assert sweeps.recover_stuck_imports() == stuck.Recovered(requeued=1)
        queued.refresh_from_db()
        assert queued.progress_at == timezone.now() and queued.started_at is None
        clock.move_to(t0 + datetime.timedelta(seconds=STARTED - 1))
        assert sweeps.recover_stuck_imports() == stuck.Recovered()
        clock.move_to(t0 + datetime.timedelta(seconds=STARTED + 1))
        assert sweeps.recover_stuck_imports() == stuck.Recovered(requeued=1)
        started.refresh_from_db()
        assert started.started_at is None and started.attempts == 1


def test_finished_and_checked_batches_are_never_touched(client, plan, manager, broker, committed):
    client.force_login(manager)
    valid = _valid_batch(client, plan, manager, committed, broker)
    invalid = _upload(client, plan, committed, content=b"indicator,date\nNope,2001-01-01\n")
    broker.run()
    invalid.refresh_from_db()
    assert invalid.status == ImportBatch.Status.INVALID
    with later(STARTED * 10):
        assert sweeps.recover_stuck_imports() == stuck.Recovered()
        for batch in (valid, invalid):
            batch.refresh_from_db()
            assert not batch.can_retry
            with committed():
                client.force_login(manager)
                client.post(reverse("audits:import_retry", args=[batch.pk]))
            assert ImportBatch.objects.get(pk=batch.pk).status == batch.status
    assert broker.sent == []


# --- Who may try again ---------------------------------------------------------------


@pytest.fixture
def failed_batch(client, plan, manager, broker, committed):
    batch = _valid_batch(client, plan, manager, committed, broker)
    _confirm(client, batch, committed)
    _dies(batch, broker)
    with later(STARTED + 1):
        sweeps.recover_stuck_imports()
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    client.logout()
    return batch


def test_outsiders_and_viewers_get_404_and_cannot_try_again(
    client, failed_batch, outsider, viewer, broker
):
    url = reverse("audits:import_retry", args=[failed_batch.pk])
    for user in (outsider, viewer):
        client.force_login(user)
        assert client.post(url).status_code == 404
    assert client.post(reverse("audits:import_retry", args=[999999])).status_code == 404
    failed_batch.refresh_from_db()
    assert failed_batch.status == ImportBatch.Status.FAILED and broker.sent == []


def test_try_again_is_a_post_with_its_csrf_token(failed_batch, manager, broker):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    url = reverse("audits:import_retry", args=[failed_batch.pk])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403  # no token
    page = client.get(reverse("audits:import_detail", args=[failed_batch.pk])).content.decode()
    assert f'action="{url}"' in page and 'name="csrfmiddlewaretoken"' in page
    failed_batch.refresh_from_db()
    assert failed_batch.status == ImportBatch.Status.FAILED and broker.sent == []
