"""Meetings: a group meets at most once a day, so a meeting is named by its group and
date alone; and a decision is recorded only at a held meeting with the report on its
agenda."""

import datetime

import pytest
from django.db import IntegrityError
from django.urls import reverse
from django.utils import timezone

from governance import services
from governance.models import Meeting
from plans.services import TransitionRefused
from qip_portal import closure


def test_a_second_meeting_of_the_group_on_the_same_date_is_refused(group, quality_lead, meeting):
    with pytest.raises(TransitionRefused) as refused:
        services.schedule_meeting(group=group, held_on=meeting.held_on, by=quality_lead)
    assert "already has a meeting on" in refused.value.reasons[0]
    assert Meeting.objects.filter(group=group).count() == 1
    # Another date, or another group on the same date, is fine.
    services.schedule_meeting(
        group=group, held_on=meeting.held_on + datetime.timedelta(days=1), by=quality_lead
    )
    assert Meeting.objects.filter(group=group).count() == 2


def test_another_group_may_meet_on_the_same_date(group, weak_group, quality_lead, meeting):
    other = services.schedule_meeting(group=weak_group, held_on=meeting.held_on, by=quality_lead)
    assert other.held_on == meeting.held_on and other.group == weak_group


def test_the_database_refuses_a_duplicate_too(group, quality_lead, meeting):
    with pytest.raises(IntegrityError):
        Meeting.objects.create(group=group, held_on=meeting.held_on, created_by=quality_lead)


def test_the_group_page_says_why_a_second_meeting_was_not_scheduled(
    client, group, quality_lead, meeting
):
    client.force_login(quality_lead)
    response = client.post(
        reverse("governance:meeting_create", args=[group.pk]),
        {"held_on": meeting.held_on.strftime("%d/%m/%Y")},
        follow=True,
    )
    assert b"already has a meeting on" in response.content
    assert Meeting.objects.filter(group=group).count() == 1


def test_the_decision_form_offers_only_held_meetings_with_the_report_on_the_agenda(
    client, chair, report, meeting, group, quality_lead
):
    tomorrow = services.schedule_meeting(
        group=group, held_on=timezone.localdate() + datetime.timedelta(days=1), by=quality_lead
    )
    url = reverse("governance:decide", args=[report.pk])
    client.force_login(chair)
    # Held today, but the report is not on its agenda: nothing to sign at.
    page = client.get(url)
    assert b'name="meeting"' not in page.content
    assert b"put the report on its agenda" in page.content
    assert list(closure.decision_meetings(report)) == []
    # On tomorrow's agenda, but tomorrow's meeting has not been held: still nothing.
    services.put_on_agenda(meeting=tomorrow, report=report, by=quality_lead)
    assert list(closure.decision_meetings(report)) == []
    services.put_on_agenda(meeting=meeting, report=report, by=quality_lead)
    assert list(closure.decision_meetings(report)) == [meeting]
    page = client.get(url)
    assert f'value="{meeting.pk}"'.encode() in page.content
    assert f'value="{tomorrow.pk}"'.encode() not in page.content


def test_a_meeting_without_the_report_on_its_agenda_cannot_be_posted(
    client, chair, report, meeting, group, quality_lead
):
    earlier = services.schedule_meeting(
        group=group, held_on=timezone.localdate() - datetime.timedelta(days=1), by=quality_lead
    )
    services.put_on_agenda(meeting=earlier, report=report, by=quality_lead)
    client.force_login(chair)
    response = client.post(
        reverse("governance:decide", args=[report.pk]),
        {
            "outcome": "return",
            "meeting": meeting.pk,  # held today, the report not on its agenda
            "reasons": "Not yet",
            "password": "x",
            "otp_token": "000000",
            "confirm": "on",
        },
    )
    assert response.status_code == 400
    assert response.context["form"].errors.get("meeting"), response.context["form"].errors
    report.refresh_from_db()
    assert report.is_awaiting_decision
