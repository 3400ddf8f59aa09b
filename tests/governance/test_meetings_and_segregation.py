"""Issue #18, weaknesses 4 and 5: a plan's owner cannot sign off their own plan, and a
decision is signed only at a meeting that has been held (on or after the report's
submission) and that the signer is recorded as attending."""

import datetime

from django.urls import reverse
from django.utils import timezone

from governance import services
from governance.models import Decision
from qip_portal import closure
from tests import factories
from tests.governance.test_services import _refusal, _sign


def test_a_chair_who_owns_the_plan_cannot_sign_its_closure(report, chair, delegate, meeting):
    from plans import services as plan_services

    plan_services.update_plan(plan=report.plan, by=delegate, fields={"owner": chair})
    reasons = _refusal(_sign, report, meeting, chair)
    assert "You own this plan, so you cannot sign its decision." in reasons[0]
    assert "A delegate chair of the group can sign instead." in reasons[0]
    assert not Decision.objects.exists()
    _sign(report, meeting, delegate)  # the delegate may
    assert Decision.objects.get().signed_by == delegate


def test_a_meeting_sixty_days_ahead_is_refused_and_not_offered(
    client, report, chair, group, quality_lead
):
    future = services.schedule_meeting(
        group=group,
        held_on=timezone.localdate() + datetime.timedelta(days=60),
        by=quality_lead,
        attendees=[chair],
    )
    reasons = _refusal(_sign, report, future, chair)
    assert any("has not happened yet" in r for r in reasons)
    assert not Decision.objects.exists()
    assert future not in closure.decision_meetings(report)
    # The form neither offers nor preselects it.
    client.force_login(chair)
    page = client.get(reverse("governance:decide", args=[report.pk])).content.decode()
    assert f'value="{future.pk}"' not in page


def test_a_meeting_before_the_submission_is_refused(report, chair, group, quality_lead):
    earlier = services.schedule_meeting(
        group=group,
        held_on=timezone.localdate(report.submitted_at) - datetime.timedelta(days=1),
        by=quality_lead,
        attendees=[chair],
    )
    reasons = _refusal(_sign, report, earlier, chair)
    assert any("was before the report was submitted" in r for r in reasons)
    assert not Decision.objects.exists()


def test_a_signer_not_recorded_as_attending_is_refused(
    report, chair, delegate, group, quality_lead
):
    meeting = services.schedule_meeting(
        group=group, held_on=timezone.localdate(), by=quality_lead, attendees=[delegate]
    )
    reasons = _refusal(_sign, report, meeting, chair)
    assert any("You are not recorded as attending the meeting" in r for r in reasons)
    assert not Decision.objects.exists()
    services.record_meeting(meeting=meeting, by=chair, minutes="", attendees=[delegate, chair])
    assert _sign(report, meeting, chair, otp_token=factories.signing_code(chair))
