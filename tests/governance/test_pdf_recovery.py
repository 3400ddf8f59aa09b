"""Closure-report PDFs whose render task was lost or died (core/stuck.py): the report
page stops polling and offers "Try again"; the sweep queues the render again, then
fails it after three starts; whoever may read the report may try again."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from core import stuck
from governance import renders
from governance.models import ClosureReport
from tests.stuck import Broker, fake_broker, later

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(monkeypatch, settings) -> Broker:
    return fake_broker(monkeypatch, settings)

QUEUED, STARTED = 60, 120


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STUCK_QUEUED_SECONDS = QUEUED
    settings.STUCK_STARTED_SECONDS = STARTED


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _page(client, report, user) -> str:
    client.force_login(user)
    response = client.get(reverse("governance:report", args=[report.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _sweep(committed) -> stuck.Recovered:
    with committed():
        return renders.recover_stuck_pdfs()


def test_a_pdf_whose_task_was_lost_is_rendered_once_the_sweep_finds_it(
    client, report, governance_member, broker, committed
):
    # ``report`` was submitted, but its after-commit render task never reached a worker.
    assert report.pdf_status == ClosureReport.PdfStatus.PENDING
    page = _page(client, report, governance_member)
    assert "pdf/status/" in page  # polling
    assert _sweep(committed) == stuck.Recovered()
    with later(QUEUED + 1):
        page = _page(client, report, governance_member)
        assert ClosureReport.PDF_STOPPED in page and "Try again" in page
        assert "pdf/status/" not in page
        assert _sweep(committed) == stuck.Recovered(requeued=1)
        assert "pdf/status/" in _page(client, report, governance_member)
        assert broker.names() == ["governance.tasks.render_report_pdf"]
        broker.run()
        report.refresh_from_db()
        assert report.pdf_ready and report.pdf_sha256
        assert _sweep(committed) == stuck.Recovered()


def test_a_render_that_kills_its_worker_each_time_is_failed_then_tried_again(
    client, report, governance_member, broker, committed
):
    for start in range(1, stuck.MAX_STARTS + 1):
        assert renders._claim(report.pk)  # a worker takes it, then dies
        assert not renders._claim(report.pk)  # a second delivery finds it taken
        with later(STARTED + 1):
            recovered = _sweep(committed)
            report.refresh_from_db()
            assert report.pdf_attempts == start
            if start < stuck.MAX_STARTS:
                assert recovered == stuck.Recovered(requeued=1)
                assert report.pdf_status == ClosureReport.PdfStatus.PENDING
                broker.lose()
            else:
                assert recovered == stuck.Recovered(failed=1)
                assert report.pdf_status == ClosureReport.PdfStatus.FAILED
                assert report.pdf_error == ClosureReport.PDF_STOPPED and broker.sent == []
    page = _page(client, report, governance_member)
    assert ClosureReport.PDF_STOPPED in page and "pdf/status/" not in page
    with committed():
        response = client.post(reverse("governance:report_pdf_retry", args=[report.pk]))
    assert response.status_code == 302
    broker.run()
    report.refresh_from_db()
    assert report.pdf_ready and report.pdf_attempts == 1
    first = report.pdf_sha256
    # Trying again a ready PDF changes nothing: a frozen PDF is never replaced.
    with committed():
        client.post(reverse("governance:report_pdf_retry", args=[report.pk]))
    assert broker.sent == []
    report.refresh_from_db()
    assert report.pdf_sha256 == first


def test_only_those_who_may_read_the_report_may_try_again(
    client, report, viewer, outsider, quality_lead, broker
):
    url = reverse("governance:report_pdf_retry", args=[report.pk])
    with later(QUEUED + 1):
        for user in (viewer, outsider):
            client.force_login(user)
            assert client.post(url).status_code == 404
        csrf = Client(enforce_csrf_checks=True)
        csrf.force_login(quality_lead)
        assert csrf.get(url).status_code == 405
        assert csrf.post(url).status_code == 403
    report.refresh_from_db()
    assert report.pdf_status == ClosureReport.PdfStatus.PENDING and broker.sent == []


def test_trying_again_is_refused_while_the_person_has_as_many_pdfs_waiting_as_allowed(
    client, report, quality_lead, oakfield, group, broker, committed, settings
):
    from qip_portal import closure
    from tests import factories

    settings.PDF_RENDERS_PER_USER = 1
    url = reverse("governance:report_pdf_retry", args=[report.pk])
    with later(QUEUED + 1):
        # ``report``'s task was lost: it may be tried again. Meanwhile the quality lead
        # submits another plan, whose PDF is waiting.
        other = factories.make_ready(
            factories.live_plan(owner=quality_lead, locations=[oakfield], title="Falls"),
            by=quality_lead,
        )
        with committed():
            second = closure.submit_for_closure(plan=other, by=quality_lead, group=group)
        assert renders.pdfs_waiting_for(quality_lead) == 1
        client.force_login(quality_lead)
        with committed():
            response = client.post(url, follow=True)
        assert "You already have 1 closure-report PDF being prepared" in (
            response.content.decode()
        )
        report.refresh_from_db()
        assert report.pdf_is_stuck
        assert broker.names().count("governance.tasks.render_report_pdf") == 1
        # Once the other PDF is ready, trying again is accepted.
        broker.run()
        second.refresh_from_db()
        assert second.pdf_ready and renders.pdfs_waiting_for(quality_lead) == 0
        with committed():
            client.post(url)
        report.refresh_from_db()
        assert report.pdf_status == ClosureReport.PdfStatus.PENDING
        assert renders.pdfs_waiting_for(quality_lead) == 1
