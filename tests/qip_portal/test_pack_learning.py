"""The evidence pack's learning: relevance reviews shown with their dates before they
fall due, who acknowledged the learning and when, and sharing (of the learning and of
the pack) and acknowledgements on the pack's timeline."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django.utils.html import escape

from learning import services as learning
from learning.models import Acknowledgement, add_months
from learning.sweeps import schedule_due_reviews
from qip_portal.packs import evidence_pack, sharing
from tests import factories
from tests.qip_portal.test_evidence_pack import closed_plan  # noqa: F401 - a fixture


@pytest.fixture(autouse=True)
def _fast(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MFA_REQUIRED_ROLES = set()
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LEARNING_REVIEW_MONTHS = (3, 12)


def pack_html(plan) -> str:
    return evidence_pack.render_plan_pack_html(evidence_pack.compile_plan_pack(plan))


def test_reviews_not_yet_due_are_shown_with_their_dates(closed_plan):  # noqa: F811
    closed_on = timezone.localdate(closed_plan.status_changed_at)
    html = pack_html(closed_plan)
    for months in (3, 12):
        due = add_months(closed_on, months)
        assert f"Scheduled for {due:%-d %b %Y}" in html, months
    assert f"next scheduled for {add_months(closed_on, 3):%-d %b %Y}" in html


def test_a_review_that_has_fallen_due_is_no_longer_only_scheduled(closed_plan):  # noqa: F811
    closed_on = timezone.localdate(closed_plan.status_changed_at)
    three = add_months(closed_on, 3)
    schedule_due_reviews(three)
    html = pack_html(closed_plan)
    assert f"Scheduled for {three:%-d %b %Y}" not in html
    assert "Due, not yet held" in html
    assert f"Scheduled for {add_months(closed_on, 12):%-d %b %Y}" in html


def test_the_pack_names_who_acknowledged_the_learning_and_when(
    closed_plan,  # noqa: F811
    quality_lead,
    manager,
    oakfield,  # noqa: F811
):
    other = factories.UserFactory(
        username="second", first_name="Second", last_name="Manager", role="manager"
    )
    other.locations.add(oakfield)
    learning.share_summary(summary=closed_plan.learning, by=quality_lead, locations=[oakfield])
    ack = Acknowledgement.objects.get(manager=manager)
    acknowledged = learning.acknowledge(ack=ack, by=manager)
    html = pack_html(closed_plan)
    when = timezone.localtime(acknowledged.acknowledged_at).strftime("%-d %b %Y, %H:%M")
    section = html[html.index("Who it was shared with") : html.index("Relevance reviews")]
    assert escape(str(manager)) in section and when in section
    assert escape(str(other)) in section and "Not yet" in section
    assert "1 has acknowledged reading it" in section
    timeline = html[html.index('id="s-timeline"') :]
    assert "Shared the learning with" in timeline
    assert escape(f"{manager} (Oakfield House), {other} (Oakfield House)") in timeline
    assert "Acknowledged reading the learning (Oakfield" in timeline


def test_share_links_are_on_the_pack_timeline(closed_plan, quality_lead):  # noqa: F811
    new = sharing.share_plan_pack(
        plan=closed_plan, by=quality_lead, recipient="Ann Inspector", organisation="CQC", days=7
    )
    sharing.revoke_share(share=new.share, by=quality_lead)
    timeline = pack_html(closed_plan)
    timeline = timeline[timeline.index('id="s-timeline"') :]
    until = timezone.localdate(new.share.expires_at)
    assert (
        f"Shared the evidence pack with Ann Inspector (CQC) by a link valid until {until:%-d %b %Y}"
        in timeline
    )
    assert "Withdrew the evidence pack&#x27;s share link for Ann Inspector (CQC)" in timeline


def test_an_open_plan_has_no_review_dates_yet(plan, quality_lead):
    html = pack_html(plan)
    assert "Scheduled for" not in html
