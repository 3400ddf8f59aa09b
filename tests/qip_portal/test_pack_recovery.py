"""Evidence packs whose render task was lost or died (core/stuck.py): requested while
the broker is down, rendered once the sweep finds them; a render that keeps dying is
failed after three starts; the page stops polling and offers "Try again" to those who
may change the plan (viewers prepare a pack of their own)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from core import stuck
from qip_portal import recovery
from qip_portal.packs import evidence_pack
from qip_portal.packs.models import EvidencePack
from tests.stuck import Broker, fake_broker, later

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(monkeypatch, settings) -> Broker:
    return fake_broker(monkeypatch, settings)

QUEUED, STARTED = 60, 120


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MFA_REQUIRED_ROLES = set()
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STUCK_QUEUED_SECONDS = QUEUED
    settings.STUCK_STARTED_SECONDS = STARTED


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _request(client, plan, committed) -> EvidencePack:
    with committed():
        response = client.post(reverse("packs:plan", args=[plan.reference]), follow=True)
    assert response.redirect_chain and response.status_code == 200  # its message shown
    return EvidencePack.objects.latest("pk")


def _page(client, plan, user) -> str:
    client.force_login(user)
    response = client.get(reverse("packs:plan", args=[plan.reference]))
    assert response.status_code == 200
    return response.content.decode()


def _sweep(committed) -> stuck.Recovered:
    with committed():
        return recovery.recover_stuck_packs()


def test_a_pack_requested_while_the_broker_is_down_is_rendered_once_the_sweep_finds_it(
    client, plan, viewer, broker, committed
):
    broker.down = True
    client.force_login(viewer)
    pack = _request(client, plan, committed)
    assert pack.render_status == EvidencePack.RenderStatus.PENDING
    assert "updates by itself" in _page(client, plan, viewer)
    broker.down = False
    assert _sweep(committed) == stuck.Recovered()
    with later(QUEUED + 1):
        page = _page(client, plan, viewer)
        assert EvidencePack.STOPPED in page and "updates by itself" not in page
        assert "You can prepare a new pack above" in page  # a viewer: no "Try again"
        assert _sweep(committed) == stuck.Recovered(requeued=1)
        assert "updates by itself" in _page(client, plan, viewer)
        broker.run()
        pack.refresh_from_db()
        assert pack.is_ready and pack.pdf_sha256
        assert _sweep(committed) == stuck.Recovered()


def test_a_render_that_kills_its_worker_each_time_is_failed_after_three_starts(
    client, plan, manager, broker, committed
):
    client.force_login(manager)
    pack = _request(client, plan, committed)
    broker.lose()
    for start in range(1, stuck.MAX_STARTS + 1):
        assert evidence_pack._claim(pack.pk) == start  # a worker takes it, then dies
        with later(STARTED + 1):
            recovered = _sweep(committed)
            pack.refresh_from_db()
            if start < stuck.MAX_STARTS:
                assert recovered == stuck.Recovered(requeued=1)
                assert pack.render_status == EvidencePack.RenderStatus.PENDING
                assert broker.names() == ["qip_portal.pack_tasks.render_evidence_pack"]
                broker.lose()
            else:
                assert recovered == stuck.Recovered(failed=1)
                assert pack.is_failed and pack.render_error == EvidencePack.STOPPED
                page = _page(client, plan, manager)
                assert EvidencePack.STOPPED in page and "Try again" in page
                assert "updates by itself" not in page
                assert _sweep(committed) == stuck.Recovered()
    with committed():
        response = client.post(reverse("packs:retry", args=[pack.pk]))
    assert response.status_code == 302
    broker.run()
    pack.refresh_from_db()
    assert pack.is_ready and pack.attempts == 1
    assert pack.history.filter(history_change_reason="Rendering tried again").get().history_user


def test_a_run_given_up_on_cannot_write_over_the_newer_one(plan, quality_lead, broker):
    pack = evidence_pack.request_plan_pack(plan=plan, by=quality_lead)
    slow = evidence_pack._claim(pack.pk)
    with later(STARTED + 1):
        assert recovery.recover_stuck_packs() == stuck.Recovered(requeued=1)
        assert evidence_pack.render_pack(pack_id=pack.pk).is_ready  # the newer run
        evidence_pack._progress(pack.pk, slow, percent=40, note="Laying out the pages")
    pack.refresh_from_db()
    assert pack.is_ready and pack.progress == 100 and pack.progress_note == ""
    # Another delivery of the task: nothing to do.
    assert evidence_pack.render_pack(pack_id=pack.pk).pdf_sha256 == pack.pdf_sha256


@pytest.fixture
def failed_pack(client, plan, manager, monkeypatch, committed, broker):
    def broken(html, **kwargs):
        raise RuntimeError("out of paper")

    client.force_login(manager)
    pack = _request(client, plan, committed)
    with monkeypatch.context() as patch:
        patch.setattr(evidence_pack, "render_pdf", broken)
        broker.run()
    pack.refresh_from_db()
    assert pack.is_failed
    client.logout()
    return pack


def test_a_failed_pack_can_be_tried_again_by_those_who_may_change_the_plan(
    client, plan, manager, failed_pack, broker, committed
):
    page = _page(client, plan, manager)
    assert "could not be rendered" in page and "Try again" in page
    assert "updates by itself" not in page
    status = client.get(reverse("packs:status", args=[failed_pack.pk])).content.decode()
    assert "hx-get" not in status and "Try again" in status
    with committed():
        client.post(reverse("packs:retry", args=[failed_pack.pk]))
    failed_pack.refresh_from_db()
    assert failed_pack.render_status == "pending" and failed_pack.render_error == ""
    broker.run()
    failed_pack.refresh_from_db()
    assert failed_pack.is_ready
    # Trying again a ready pack changes nothing.
    with committed():
        client.post(reverse("packs:retry", args=[failed_pack.pk]))
    assert broker.sent == [] and EvidencePack.objects.get(pk=failed_pack.pk).is_ready


def test_outsiders_and_viewers_cannot_try_again(
    client, plan, viewer, outsider, manager, failed_pack, broker
):
    url = reverse("packs:retry", args=[failed_pack.pk])
    client.force_login(viewer)
    page = _page(client, plan, viewer)
    assert "could not be rendered" in page and url not in page
    for user in (viewer, outsider):
        client.force_login(user)
        assert client.post(url).status_code == 404
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(manager)
    assert csrf.get(url).status_code == 405
    assert csrf.post(url).status_code == 403
    assert EvidencePack.objects.get(pk=failed_pack.pk).is_failed and broker.sent == []


def test_register_packs_are_tried_again_by_quality_leads_only(
    client, quality_lead, manager, broker, committed
):
    client.force_login(quality_lead)
    with committed():
        client.post(
            reverse("packs:register"), {"date_from": "2026-01-01", "date_to": "2026-03-31"}
        )
    pack = EvidencePack.objects.get(kind=EvidencePack.Kind.REGISTER)
    broker.lose()
    url = reverse("packs:retry", args=[pack.pk])
    with later(QUEUED + 1):
        client.force_login(quality_lead)
        page = client.get(reverse("packs:register")).content.decode()
        assert EvidencePack.STOPPED in page and url in page
        client.force_login(manager)
        assert client.post(url).status_code == 404
        client.force_login(quality_lead)
        with committed():
            assert client.post(url).status_code == 302
    assert broker.names() == ["qip_portal.pack_tasks.render_evidence_pack"]
    broker.run()
    assert EvidencePack.objects.get(pk=pack.pk).is_ready


# --- How many packs one person may have waiting -------------------------------------------

WAIT = "You already have 5 evidence packs being prepared"


def test_a_person_may_have_five_packs_waiting_then_is_asked_to_wait(
    client, plan, viewer, manager, broker, committed
):
    """Viewers may ask for packs (a pack changes nothing on the plan), five at a time."""
    client.force_login(viewer)
    for _ in range(5):
        _request(client, plan, committed)
    with committed():
        response = client.post(reverse("packs:plan", args=[plan.reference]), follow=True)
    assert response.status_code == 200 and WAIT in response.content.decode()
    assert EvidencePack.objects.filter(requested_by=viewer).count() == 5
    assert len(broker.sent) == 5  # nothing more was queued
    # Someone else is not held up by the viewer's packs.
    client.force_login(manager)
    _request(client, plan, committed)
    # Once one of the viewer's packs is ready, the viewer may ask for another.
    broker.run_next()
    client.force_login(viewer)
    _request(client, plan, committed)
    assert EvidencePack.objects.filter(requested_by=viewer).count() == 6


def test_stuck_packs_do_not_count_as_waiting(client, plan, viewer, broker, committed):
    client.force_login(viewer)
    for _ in range(5):
        _request(client, plan, committed)
    broker.lose()
    with later(QUEUED + 1):  # no task will ever render these without the sweep
        _request(client, plan, committed)
    assert EvidencePack.objects.filter(requested_by=viewer).count() == 6


def test_register_packs_and_trying_again_count_too(
    client, plan, manager, quality_lead, failed_pack, broker, committed
):
    client.force_login(quality_lead)
    period = {"date_from": "2026-01-01", "date_to": "2026-03-31"}
    for _ in range(5):
        with committed():
            assert client.post(reverse("packs:register"), period).status_code == 302
    with committed():
        response = client.post(reverse("packs:register"), period)
    assert response.status_code == 429 and WAIT in response.content.decode()
    assert 'value="2026-03-31"' in response.content.decode()  # the form keeps its dates
    assert EvidencePack.objects.filter(kind=EvidencePack.Kind.REGISTER).count() == 5
    # "Try again" queues a render as well: refused while five are waiting, and the
    # failed pack stays failed.
    client.force_login(manager)
    for _ in range(5):
        _request(client, plan, committed)
    with committed():
        response = client.post(reverse("packs:retry", args=[failed_pack.pk]), follow=True)
    assert WAIT in response.content.decode()
    assert EvidencePack.objects.get(pk=failed_pack.pk).is_failed
