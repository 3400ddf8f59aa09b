import datetime

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from learning import services, sweeps
from learning.models import Acknowledgement, Embedding, LearningReview, LearningSummary
from tests import factories
from tests.learning.helpers import close_plan, closed_plan_with_learning, write_summary

LONDON = timezone.get_default_timezone()

SUMMARY_POST = {
    "what_happened": "Several safeguarding alerts: concerns were not escalated within 24 hours.",
    "what_changed": "A daily safeguarding huddle; a new recording template; supervision checks.",
    "key_messages": "Escalate every concern the same day. Record facts, not opinions.",
}


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=LONDON)


def test_walkthrough_3_learning_retention(
    client, quality_lead, manager, governance_member, oakfield, django_capture_on_commit_callbacks
):
    """Summary written, shared, acknowledged, embedded in induction and supervision,
    back for review three months after closure, outcome recorded."""
    with time_machine.travel(at(2026, 1, 5, 10), tick=False):
        plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
        ref = plan.reference
        client.force_login(quality_lead)
        page = client.get(plan.get_absolute_url()).content.decode()
        assert "No learning summary yet" in page

        response = client.post(reverse("learning:summary", args=[ref]), SUMMARY_POST)
        assert response.status_code == 302
        assert plan.learning.key_messages == SUMMARY_POST["key_messages"]

        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("learning:share", args=[ref]), {"locations": [oakfield.pk]}
            )
        assert response.status_code == 302
        assert [m.to for m in mail.outbox] == [[manager.email]]
        page = client.get(reverse("learning:detail", args=[ref])).content.decode()
        assert "1 outstanding" in page

        for kind, who in [("induction", "Tom Okafor"), ("supervision", "Priya Shah")]:
            response = client.post(
                reverse("learning:add_embedding", args=[ref]),
                {"kind": kind, "embedded_on": "2026-01-05", "who": who, "note": "Updated."},
            )
            assert response.status_code == 302
        page = client.get(plan.get_absolute_url()).content.decode()
        assert "Induction (5 Jan 2026)" in page and "Supervision framework (5 Jan 2026)" in page

        client.force_login(manager)
        page = client.get(reverse("learning:to_read")).content.decode()
        assert SUMMARY_POST["key_messages"] in page and "I have read this" in page
        ack = Acknowledgement.objects.get(manager=manager)
        response = client.post(reverse("learning:acknowledge", args=[ack.pk]))
        assert response.status_code == 302
        ack.refresh_from_db()
        assert ack.acknowledged_at is not None
        assert "Acknowledged 5 Jan 2026" in client.get(reverse("learning:to_read")).content.decode()

    close_plan(plan, by=quality_lead, when=at(2026, 1, 20, 15))

    with time_machine.travel(at(2026, 4, 20, 7), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            sweeps.schedule_due_reviews(timezone.localdate())
        review = LearningReview.objects.get()
        assert review.due_on == datetime.date(2026, 4, 20)
        assert "Learning review due" in mail.outbox[-1].subject
        meeting = _leadership_meeting(quality_lead, governance_member, datetime.date(2026, 4, 28))
        # The quality lead puts it on the agenda of the leadership meeting...
        client.force_login(quality_lead)
        page = client.get(reverse("learning:reviews")).content.decode()
        assert ref in page and "Not on an agenda yet" in page
        response = client.post(
            reverse("learning:review_agenda", args=[review.pk]), {"agenda-meeting": meeting.pk}
        )
        assert response.status_code == 302
        assert (
            "Leadership Team on 28 Apr 2026"
            in client.get(reverse("learning:reviews")).content.decode()
        )

    with time_machine.travel(at(2026, 4, 28, 15), tick=False):
        # ...and a member records the outcome at that meeting.
        client.force_login(governance_member)
        page = client.get(reverse("learning:review", args=[review.pk])).content.decode()
        assert "Record the outcome" in page
        response = client.post(
            reverse("learning:review", args=[review.pk]),
            {
                "outcome": "still_relevant",
                "meeting": meeting.pk,
                "note": "Hand-off audits confirm it is still practised.",
            },
        )
        assert response.status_code == 302
        review.refresh_from_db()
        assert review.outcome == "still_relevant" and review.meeting == meeting
        assert review.reviewed_by == governance_member
        assert review.reviewed_on == datetime.date(2026, 4, 28)
        page = client.get(reverse("learning:detail", args=[ref])).content.decode()
        assert "Still relevant" in page and "at Leadership Team on 28 Apr 2026" in page
        library = client.get(reverse("learning:library")).content.decode()
        assert ref in library and "still relevant (28 Apr 2026)" in library


def _leadership_meeting(lead, member, held_on):
    from governance import services as governance_services

    group = governance_services.create_group(by=lead, name="Leadership Team", authority_level=4)
    governance_services.set_membership(group=group, user=member, role="member", by=lead)
    return governance_services.schedule_meeting(group=group, held_on=held_on, by=lead)


def test_summary_form_keeps_input_on_error(client, quality_lead, plan):
    client.force_login(quality_lead)
    response = client.post(
        reverse("learning:summary", args=[plan.reference]),
        {**SUMMARY_POST, "key_messages": "   "},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "This field is required." in body and "The summary was not saved" in body
    assert "daily safeguarding huddle" in body
    assert not LearningSummary.objects.exists()


def test_embedding_rejects_future_dates_and_disguised_files(client, quality_lead, plan):
    write_summary(plan, by=quality_lead)
    client.force_login(quality_lead)
    url = reverse("learning:add_embedding", args=[plan.reference])
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    response = client.post(url, {"kind": "induction", "embedded_on": tomorrow, "who": "Tom"})
    assert "The date cannot be in the future." in response.content.decode()
    fake = SimpleUploadedFile("induction.pdf", b"<html><script>x</script></html>")
    response = client.post(
        url,
        {"kind": "induction", "embedded_on": "2026-01-05", "who": "Tom", "evidence": fake},
    )
    assert response.status_code == 200 and "not a PDF" in response.content.decode()
    assert not Embedding.objects.exists()


def test_embedding_evidence_is_stored_privately_and_served_only_through_the_view(
    client, quality_lead, plan, outsider, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    write_summary(plan, by=quality_lead)
    client.force_login(quality_lead)
    pdf = SimpleUploadedFile("Induction pack v2.pdf", b"%PDF-1.4\n%test\n")
    response = client.post(
        reverse("learning:add_embedding", args=[plan.reference]),
        {"kind": "induction", "embedded_on": "2026-01-05", "who": "Tom", "evidence": pdf},
    )
    assert response.status_code == 302
    embedding = Embedding.objects.get()
    assert embedding.content_type == "application/pdf"
    assert "Induction pack" not in embedding.file.name  # random stored name
    url = reverse("learning:embedding_file", args=[plan.reference, embedding.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert 'filename="Induction pack v2.pdf"' in response["Content-Disposition"]
    client.force_login(outsider)
    assert client.get(url).status_code == 404


# --- Access -----------------------------------------------------------------------


@pytest.fixture
def everything(quality_lead, manager, oakfield):
    """A closed plan with learning, shared with Oakfield's manager, an embedding, a
    to-do from a review and a due review."""
    summary = closed_plan_with_learning(
        owner=quality_lead, locations=[oakfield], closed_at=at(2025, 1, 10, 12)
    )
    services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
    embedding = services.record_embedding(
        summary=summary,
        by=quality_lead,
        kind="induction",
        embedded_on=datetime.date(2025, 1, 20),
        who="Tom",
    )
    sweeps.schedule_due_reviews(datetime.date(2025, 4, 10))
    return summary, embedding, LearningReview.objects.get()


def _learning_urls(summary, embedding, review) -> list[str]:
    ref = summary.plan.reference
    ack = summary.acknowledgements.first()
    return [
        reverse("learning:detail", args=[ref]),
        reverse("learning:summary", args=[ref]),
        reverse("learning:share", args=[ref]),
        reverse("learning:add_embedding", args=[ref]),
        reverse("learning:edit_embedding", args=[ref, embedding.pk]),
        reverse("learning:embedding_file", args=[ref, embedding.pk]),
        reverse("learning:review", args=[review.pk]),
        reverse("learning:acknowledge", args=[ack.pk]),
    ]


def test_every_learning_url_is_404_to_an_outsider(client, everything, outsider):
    summary, embedding, review = everything
    client.force_login(outsider)
    *pages, acknowledge = _learning_urls(summary, embedding, review)
    for url in pages:
        assert client.get(url).status_code == 404, url
    for url in [*pages, acknowledge]:
        assert client.post(url, {"outcome": "retired", "note": "x"}).status_code == 404, url
    # POST-only: a GET is refused the same way whether or not the row exists.
    assert client.get(acknowledge).status_code == 405
    assert client.get(reverse("learning:acknowledge", args=[999999])).status_code == 405
    ref = summary.plan.reference
    for name in ("learning:library", "learning:reviews", "learning:to_read"):
        response = client.get(reverse(name))
        assert response.status_code == 200 and ref not in response.content.decode(), name
    review.refresh_from_db()
    assert review.is_open and not summary.acknowledgements.filter(acknowledged_at__isnull=False)


def test_viewers_can_read_but_change_nothing(client, everything, viewer):
    summary, embedding, review = everything
    client.force_login(viewer)
    urls = _learning_urls(summary, embedding, review)
    detail = urls[0]
    page = client.get(detail).content.decode()
    assert summary.key_messages in page
    assert "Edit summary" not in page and "Record embedding" not in page and "Share" not in page
    assert client.get(urls[6]).status_code == 200  # reads the review
    for url in urls[1:]:
        response = client.post(url, {**SUMMARY_POST, "outcome": "retired", "note": "x"})
        assert response.status_code == 404, url
    for url in urls[1:5]:
        assert client.get(url).status_code == 404, url
    review.refresh_from_db()
    summary.refresh_from_db()
    assert review.is_open and not summary.is_retired
    assert summary.history.count() == 1


def test_managers_cannot_record_reviews_or_share(client, everything, manager):
    summary, embedding, review = everything
    client.force_login(manager)
    assert client.get(reverse("learning:share", args=[summary.plan.reference])).status_code == 404
    response = client.post(reverse("learning:review", args=[review.pk]), {"outcome": "retired"})
    assert response.status_code == 404


def test_learning_shared_with_another_location_is_readable_there_but_not_its_plan(
    client, everything, quality_lead, riverside, outsider
):
    summary, _, _ = everything
    services.share_summary(summary=summary, by=quality_lead, locations=[riverside])
    client.force_login(outsider)
    page = client.get(reverse("learning:detail", args=[summary.plan.reference]))
    assert page.status_code == 200 and "I have read this" in page.content.decode()
    assert "Go to the plan" not in page.content.decode()
    assert client.get(summary.plan.get_absolute_url()).status_code == 404
    library = client.get(reverse("learning:library")).content.decode()
    assert summary.plan.reference in library and "Go to the plan" not in library
    assert client.get(reverse("learning:summary", args=[summary.plan.reference])).status_code == 404


def test_someone_elses_acknowledgement_cannot_be_posted(client, everything, quality_lead):
    summary, _, _ = everything
    ack = summary.acknowledgements.get()
    client.force_login(quality_lead)
    assert client.post(reverse("learning:acknowledge", args=[ack.pk])).status_code == 404
    ack.refresh_from_db()
    assert ack.is_outstanding


def test_acknowledge_needs_post(client, everything, manager):
    summary, _, _ = everything
    ack = summary.acknowledgements.get()
    client.force_login(manager)
    assert client.get(reverse("learning:acknowledge", args=[ack.pk])).status_code == 405
    ack.refresh_from_db()
    assert ack.is_outstanding


def test_review_form_explains_missing_reason_and_keeps_input(client, everything, quality_lead):
    _, _, review = everything
    client.force_login(quality_lead)
    response = client.post(
        reverse("learning:review", args=[review.pk]),
        {"outcome": "reembed", "note": "Night staff missed it.", "reembed_kind": ""},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Say where the learning needs embedding again." in body
    assert "Night staff missed it." in body
    review.refresh_from_db()
    assert review.is_open


def test_reembed_from_the_page_shows_a_to_do_on_the_learning(client, everything, quality_lead):
    summary, _, review = everything
    client.force_login(quality_lead)
    client.post(
        reverse("learning:review", args=[review.pk]),
        {"outcome": "reembed", "reembed_kind": "team_meeting", "reembed_due_on": "2025-05-30"},
    )
    page = client.get(reverse("learning:detail", args=[summary.plan.reference])).content.decode()
    assert "Team meeting" in page and "To do" in page and "due 30 May 2025" in page


# --- The library --------------------------------------------------------------------


@pytest.mark.parametrize("entries", [1, 50])
def test_library_runs_a_fixed_number_of_queries(
    client, quality_lead, oakfield, riverside, entries, settings, django_assert_max_num_queries
):
    settings.LEARNING_LIBRARY_PAGE_SIZE = 50
    for i in range(entries):
        summary = closed_plan_with_learning(
            owner=quality_lead,
            locations=[oakfield, riverside],
            closed_at=at(2025, 1, 10, 12),
            title=f"Plan {i}",
        )
        services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
        services.record_embedding(
            summary=summary,
            by=quality_lead,
            kind="induction",
            embedded_on=datetime.date(2025, 1, 20),
            who="Tom",
        )
    sweeps.schedule_due_reviews(datetime.date(2026, 6, 1))
    client.force_login(quality_lead)
    # 10 for the library (count, page, 4 prefetches, readable plans, 3 filter lists),
    # the rest is the session, user and sign-in middleware.
    with django_assert_max_num_queries(18):
        response = client.get(reverse("learning:library"))
    assert len(response.context["page"].object_list) == entries


@pytest.mark.parametrize("q", ['"', "'", "ü", "中文", "%", "_", "", "   ", "' OR 1=1 --"])
def test_library_search_handles_odd_input(client, quality_lead, oakfield, q):
    write_summary(
        factories.live_plan(owner=quality_lead, locations=[oakfield]),
        by=quality_lead,
        key_messages='Ask Mr Müller: 中文 notes are fine; 100% of "concerns" don\'t wait (form_b).',
    )
    other = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Falls")
    write_summary(other, by=quality_lead, key_messages="Plain.")
    client.force_login(quality_lead)
    response = client.get(reverse("learning:library"), {"q": q})
    assert response.status_code == 200
    found = len(response.context["page"].object_list)
    if q.strip() in ("", "' OR 1=1 --"):
        assert found == (2 if not q.strip() else 0)
    else:
        assert found == 1  # "%" and "_" are literal characters, not wildcards


def test_library_filters(client, quality_lead, oakfield, riverside):
    from plans.models import QualityStatement, Theme

    statement = QualityStatement.objects.first()
    a = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Safeguarding")
    a.quality_statements.set([statement])
    write_summary(a, by=quality_lead)
    falls = Theme.objects.create(name="Falls")
    b = factories.live_plan(owner=quality_lead, locations=[riverside], title="Falls at night")
    b.theme = falls
    b.save()
    with time_machine.travel(at(2025, 6, 1, 9), tick=False):
        write_summary(b, by=quality_lead)
    client.force_login(quality_lead)
    url = reverse("learning:library")

    def refs(**params):
        objs = client.get(url, params).context["page"].object_list
        return [s.plan.reference for s in objs]

    assert refs(theme=falls.pk) == [b.reference]
    assert refs(location=oakfield.pk) == [a.reference]
    assert refs(statement=statement.pk) == [a.reference]
    assert refs(date_to="2025-12-31") == [b.reference]
    assert refs(date_from="2026-01-01", date_to="2099-01-01") == [a.reference]
    assert client.get(url, {"date_from": "nonsense", "page": "x"}).status_code == 200


def test_retired_learning_is_hidden_unless_asked_for(client, everything, quality_lead):
    summary, _, review = everything
    services.record_review(review=review, by=quality_lead, outcome="retired", note="Obsolete.")
    client.force_login(quality_lead)
    url = reverse("learning:library")
    assert not client.get(url).context["page"].object_list
    assert len(client.get(url, {"include_retired": "on"}).context["page"].object_list) == 1


def test_empty_states(client, quality_lead, manager):
    client.force_login(manager)
    assert (
        "Nothing has been shared with you yet"
        in client.get(reverse("learning:to_read")).content.decode()
    )
    client.force_login(quality_lead)
    assert (
        "There is no learning in the library yet"
        in client.get(reverse("learning:library")).content.decode()
    )
    assert (
        "No learning is due for review" in client.get(reverse("learning:reviews")).content.decode()
    )


def test_plan_page_shows_outstanding_acknowledgements(client, everything, quality_lead):
    summary, _, _ = everything
    client.force_login(quality_lead)
    page = client.get(summary.plan.get_absolute_url()).content.decode()
    assert "1 outstanding" in page and "Manager Tester" in page


def test_only_reviewers_may_put_a_review_on_an_agenda(
    client, everything, quality_lead, governance_member, viewer, outsider, manager
):
    _, _, review = everything
    meeting = _leadership_meeting(quality_lead, governance_member, datetime.date(2025, 4, 20))
    url = reverse("learning:review_agenda", args=[review.pk])
    for persona in (viewer, outsider, manager):
        client.force_login(persona)
        assert client.post(url, {"agenda-meeting": meeting.pk}).status_code == 404
    review.refresh_from_db()
    assert review.meeting is None
    # A member of another group cannot see this meeting, so cannot choose it.
    stranger = factories.UserFactory(username="stranger", role="governance_member")
    client.force_login(stranger)
    with time_machine.travel(at(2025, 4, 15, 9), tick=False):
        client.post(url, {"agenda-meeting": meeting.pk})
        review.refresh_from_db()
        assert review.meeting is None
        client.force_login(governance_member)
        client.post(url, {"agenda-meeting": meeting.pk})
    review.refresh_from_db()
    assert review.meeting == meeting
    assert review.history.filter(history_change_reason__startswith="On the agenda of").exists()
