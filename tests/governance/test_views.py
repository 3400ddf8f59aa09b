import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from core import freshness
from governance import services
from governance.models import ClosureReport, Decision, Membership
from plans.models import Plan
from qip_portal import closure
from tests import factories
from tests.factories import PASSWORD
from tests.governance.conftest import make_ready


def _urls(report, meeting, group) -> list[tuple[str, str]]:
    plan = report.plan
    membership = Membership.objects.filter(group=group).first()
    risk = plan.residual_risks.first()
    return [
        ("get", reverse("governance:home")),
        ("get", reverse("governance:groups")),
        ("get", reverse("governance:group_create")),
        ("get", reverse("governance:group", args=[group.pk])),
        ("post", reverse("governance:member_add", args=[group.pk])),
        ("post", reverse("governance:member_remove", args=[group.pk, membership.pk])),
        ("post", reverse("governance:meeting_create", args=[group.pk])),
        ("get", reverse("governance:meeting", args=[meeting.pk])),
        ("post", reverse("governance:meeting", args=[meeting.pk])),
        ("post", reverse("governance:agenda_add", args=[meeting.pk])),
        ("get", reverse("governance:plan_report", args=[plan.reference])),
        ("post", reverse("governance:risk_add", args=[plan.reference])),
        ("post", reverse("governance:risk_remove", args=[plan.reference, risk.pk])),
        ("post", reverse("governance:submit", args=[plan.reference])),
        ("get", reverse("governance:reports")),
        ("get", reverse("governance:report", args=[report.pk])),
        ("get", reverse("governance:report_pdf", args=[report.pk])),
        ("get", reverse("governance:report_pdf_status", args=[report.pk])),
        ("get", reverse("governance:decide", args=[report.pk])),
        ("post", reverse("governance:decide", args=[report.pk])),
    ]


@pytest.mark.parametrize("persona", ["outsider", "manager", "viewer"])
def test_people_outside_governance_get_404_on_every_governance_url(
    persona, request, client, report_with_pdf, meeting, group
):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    for method, url in _urls(report_with_pdf, meeting, group):
        response = getattr(client, method)(url)
        assert response.status_code == 404, (persona, method, url, response.status_code)


def test_a_member_of_another_group_cannot_see_this_groups_report(
    client, report_with_pdf, meeting, group, quality_lead
):
    stranger = factories.UserFactory(username="stranger", role="governance_member")
    other = services.create_group(by=quality_lead, name="Quality Committee", authority_level=3)
    services.set_membership(group=other, user=stranger, role="chair", by=quality_lead)
    client.force_login(stranger)
    for url in [
        reverse("governance:report", args=[report_with_pdf.pk]),
        reverse("governance:report_pdf", args=[report_with_pdf.pk]),
        reverse("governance:decide", args=[report_with_pdf.pk]),
        reverse("governance:meeting", args=[meeting.pk]),
        reverse("governance:group", args=[group.pk]),
    ]:
        assert client.get(url).status_code == 404, url


def test_state_changes_refuse_get(client, quality_lead, report, group):
    client.force_login(quality_lead)
    response = client.get(reverse("governance:submit", args=[report.plan.reference]))
    assert response.status_code == 405


def test_quality_lead_submits_from_the_report_page(client, quality_lead, ready_plan, group):
    client.force_login(quality_lead)
    page = client.get(reverse("governance:plan_report", args=[ready_plan.reference]))
    assert page.status_code == 200
    assert b"Freeze and submit" in page.content
    response = client.post(
        reverse("governance:submit", args=[ready_plan.reference]), {"group": group.pk}
    )
    report = ClosureReport.objects.get()
    assert response.status_code == 302 and response["Location"] == report.get_absolute_url()
    page = client.get(report.get_absolute_url())
    assert report.sha256.encode() in page.content
    assert b"it matches" in page.content


def test_the_live_report_is_compiled_once_until_the_plan_changes(
    client, quality_lead, ready_plan, django_assert_max_num_queries
):
    url = reverse("governance:plan_report", args=[ready_plan.reference])
    client.force_login(quality_lead)
    with django_assert_max_num_queries(80) as first:
        report = client.get(url).context["report_html"]  # the live report, rendered
    assert "Residual risks" in report
    with django_assert_max_num_queries(80) as again:
        assert client.get(url).context["report_html"] == report
    assert len(again.captured_queries) < len(first.captured_queries)
    client.post(
        reverse("governance:risk_add", args=[ready_plan.reference]),
        {"description": "Agency staff at night", "monitoring": "Monthly spot checks"},
    )
    assert "Agency staff at night" not in report
    assert "Agency staff at night" in client.get(url).context["report_html"]


def test_a_refused_submission_keeps_what_was_typed(client, quality_lead, plan, group):
    client.force_login(quality_lead)
    response = client.post(
        reverse("governance:submit", args=[plan.reference]),
        {"group": group.pk, "override_rationale": "Board accepted the residual gap"},
    )
    assert response.status_code == 400
    assert b"Record the residual risks" in response.content
    assert b"Board accepted the residual gap" in response.content
    assert plan.status == Plan.objects.get(pk=plan.pk).status == Plan.Status.LIVE


def test_an_invalid_residual_risk_keeps_what_was_typed(client, quality_lead, plan):
    client.force_login(quality_lead)
    response = client.post(
        reverse("governance:risk_add", args=[plan.reference]),
        {"description": "Night staff turnover", "monitoring": ""},
    )
    assert response.status_code == 400
    assert b"Night staff turnover" in response.content


def test_chair_signs_through_the_form_and_a_wrong_password_keeps_the_input(
    client, chair, report_with_pdf, meeting, quality_lead
):
    report = report_with_pdf
    services.put_on_agenda(meeting=meeting, report=report, by=quality_lead)
    client.force_login(chair)
    url = reverse("governance:decide", args=[report.pk])
    assert client.get(url).status_code == 200
    data = {
        "outcome": "return",
        "meeting": meeting.pk,
        "reasons": "Only one re-audit in the window",
        "password": "wrong",
        "otp_token": factories.signing_code(chair),
        "confirm": "on",
    }
    response = client.post(url, data)
    assert response.status_code == 400
    assert b"The password or the code was not right" in response.content
    assert b"Only one re-audit in the window" in response.content
    assert b'value="wrong"' not in response.content
    response = client.post(
        url, {**data, "password": PASSWORD, "otp_token": factories.signing_code(chair)}
    )
    assert response.status_code == 302
    decision = Decision.objects.get()
    assert decision.outcome == "return" and decision.signed_by == chair
    # The sign-off is a security event naming the plan and the snapshot hash (issue 11).
    from core.models import SecurityEvent

    event = SecurityEvent.objects.get(kind="sign_off", user=chair)
    assert report.plan.reference in event.detail and decision.snapshot_sha256 in event.detail
    assert not SecurityEvent.objects.filter(kind="sign_off").exclude(pk=event.pk).exists()
    page = client.get(report.get_absolute_url())
    assert decision.signature_meaning.encode() in page.content
    # Signed: the form is gone, and posting again is refused.
    assert client.get(url).status_code == 404
    assert client.post(url, {**data, "password": PASSWORD}).status_code == 404


def test_a_signed_decision_cannot_be_edited_even_in_the_admin(
    rf, administrator, report, chair, meeting
):
    from django.contrib import admin

    decision = closure.sign_decision(
        report=report,
        meeting=meeting,
        by=chair,
        otp_token=factories.signing_code(chair),
        password=PASSWORD,
        outcome="close",
    )
    request = rf.get("/admin/")
    request.user = administrator
    for model in (Decision, ClosureReport):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_change_permission(request, decision)
        assert not model_admin.has_delete_permission(request, decision)
        assert not model_admin.has_add_permission(request)
    # And there is no service that changes a decision: signing again is refused.
    with pytest.raises(services.TransitionRefused):
        closure.sign_decision(
            report=report,
            meeting=meeting,
            by=chair,
            otp_token=factories.signing_code(chair),
            password=PASSWORD,
            outcome="return",
            reasons="edited",
        )
    decision.refresh_from_db()
    assert decision.outcome == "close" and decision.reasons == ""


def test_the_plan_page_shows_the_governance_panel(client, quality_lead, report):
    client.force_login(quality_lead)
    page = client.get(report.plan.get_absolute_url())
    assert page.status_code == 200
    assert b"awaiting decision" in page.content


def test_group_and_meeting_pages_work_for_the_chair(client, chair, report, meeting, group):
    client.force_login(chair)
    response = client.post(
        reverse("governance:agenda_add", args=[meeting.pk]), {"report": report.pk}
    )
    assert response.status_code == 302
    page = client.get(meeting.get_absolute_url())
    assert report.plan.reference.encode() in page.content and b"Record decision" in page.content
    response = client.post(
        meeting.get_absolute_url(), {"minutes": "Quorate.", "attendees": [chair.pk]}
    )
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.minutes == "Quorate." and list(meeting.attendees.all()) == [chair]
    assert client.get(group.get_absolute_url()).status_code == 200


def _many_reports(n: int, quality_lead, oakfield, group):
    for i in range(n):
        plan = factories.live_plan(owner=quality_lead, locations=[oakfield], title=f"Plan {i}")
        ClosureReport.objects.create(
            plan=plan,
            group=group,
            submitted_by=quality_lead,
            sign_off_level=3,
            content_json="{}",
            content_html="",
            sha256="0" * 64,
            status="decided" if i % 2 else "awaiting_decision",
        )


@pytest.mark.parametrize("url_name", ["governance:home", "governance:reports", "governance:groups"])
def test_list_pages_run_a_constant_number_of_queries(
    url_name, client, quality_lead, oakfield, group, chair, django_assert_max_num_queries
):
    client.force_login(chair)
    _many_reports(1, quality_lead, oakfield, group)
    client.get(reverse(url_name))  # the first request after login also touches the session
    freshness.data_changed()  # computed, not served from the cache (core.freshness)
    with django_assert_max_num_queries(12) as one:
        assert client.get(reverse(url_name)).status_code == 200
    _many_reports(49, quality_lead, oakfield, group)
    services.schedule_meeting(
        group=group, held_on=timezone.localdate() + datetime.timedelta(days=3), by=quality_lead
    )
    freshness.data_changed()
    with django_assert_max_num_queries(len(one.captured_queries)) as fifty:
        response = client.get(reverse(url_name))
    assert response.status_code == 200
    assert len(fifty.captured_queries) == len(one.captured_queries)


def test_groups_can_be_created_and_staffed_by_the_quality_lead(client, quality_lead, chair):
    client.force_login(quality_lead)
    response = client.post(
        reverse("governance:group_create"),
        {"name": "Quality and Safety Committee", "authority_level": "3", "remit": ""},
    )
    assert response.status_code == 302
    group = ClosureReport._meta.apps.get_model("governance", "GovernanceGroup").objects.get()
    response = client.post(
        reverse("governance:member_add", args=[group.pk]), {"user": chair.pk, "role": "chair"}
    )
    assert response.status_code == 302
    assert group.memberships.get().role == "chair"
    history = group.memberships.get().history.get()
    assert history.history_user == quality_lead and history.history_change_reason == "Member added"


def test_decided_reports_and_a_stepped_down_plan(
    client, chair, report, meeting, oakfield, quality_lead
):
    services.put_on_agenda(meeting=meeting, report=report, by=quality_lead)
    indicator = report.plan.indicators.get()
    client.force_login(chair)
    response = client.post(
        reverse("governance:decide", args=[report.pk]),
        {
            "outcome": "step_down",
            "meeting": meeting.pk,
            "monitoring_indicators": [indicator.pk],
            f"floor_{indicator.pk}": "90",
            "monitoring_ends_on": (timezone.localdate() + datetime.timedelta(days=180)).isoformat(),
            "password": PASSWORD,
            "otp_token": factories.signing_code(chair),
            "confirm": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Plan.objects.get(pk=report.plan_id).status == Plan.Status.MONITORING
    assert make_ready  # imported for fixtures elsewhere


def test_governance_home_pages_a_long_list_of_reports_awaiting_a_decision(
    client, quality_lead, oakfield, group, chair, settings
):
    settings.REGISTER_PAGE_SIZE = 4
    for _ in range(6):
        _many_reports(1, quality_lead, oakfield, group)  # awaiting (i % 2 == 0 above)
    client.force_login(chair)
    first = client.get(reverse("governance:home"))
    assert len(first.context["awaiting"].object_list) == 4
    assert "6 reports are waiting" in first.content.decode()
    waited = [r.submitted_at for r in first.context["awaiting"]]
    assert waited == sorted(waited)  # longest waiting first
    assert "Page 1 of 2" in first.content.decode()
    second = client.get(reverse("governance:home"), {"page": "2"})
    assert len(second.context["awaiting"].object_list) == 2
    shown = {r.pk for r in first.context["awaiting"]} | {r.pk for r in second.context["awaiting"]}
    assert len(shown) == 6
    # A nonsense page number shows the first page, not an error.
    assert client.get(reverse("governance:home"), {"page": "x"}).status_code == 200


@pytest.mark.postgres
@pytest.mark.parametrize("status", ["decided", "awaiting_decision"])
def test_governance_home_reads_its_reports_in_order_from_an_index(chair, group, status):
    """With 10,000 reports the planner joined and sorted them all for a page of 20
    (BENCHMARKS.md): the status-and-date index gives them in order. Sorting is switched
    off here so the planner must use such an index if there is one."""
    from django.db import connection

    from governance import access
    from governance.views import _report_rows

    rows = _report_rows(access.visible_reports(chair).filter(status=status))
    if status == "awaiting_decision":
        rows = rows.order_by("submitted_at", "pk")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
    plan = rows[:20].explain()
    assert "report_status_recent" in plan


def test_the_plan_page_lists_reports_without_loading_their_frozen_snapshots(
    client, quality_lead, report, django_assert_max_num_queries
):
    client.force_login(quality_lead)
    with django_assert_max_num_queries(80) as captured:
        response = client.get(report.plan.get_absolute_url())
    assert response.status_code == 200
    assert reverse("governance:report", args=[report.pk]) in response.content.decode()
    assert not [q for q in captured.captured_queries if "content_html" in q["sql"]]
