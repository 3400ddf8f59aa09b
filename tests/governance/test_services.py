import datetime
import json
import threading

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.db import close_old_connections
from django.utils import timezone

from governance import services
from governance.models import ClosureReport, Decision, Membership, snapshot_digest
from plans import services as plan_services
from plans.models import Plan, SignOffLevel
from plans.services import TransitionRefused
from qip_portal import closure
from tests import factories
from tests.factories import PASSWORD


def _sign(report, meeting, by, **kwargs):
    kwargs.setdefault("password", PASSWORD)
    kwargs.setdefault("outcome", Decision.Outcome.CLOSE)
    if "otp_token" not in kwargs:
        kwargs["otp_token"] = factories.signing_code(by)
    return closure.sign_decision(report=report, meeting=meeting, by=by, **kwargs)


def _refusal(callable_, *args, **kwargs) -> list[str]:
    with pytest.raises(TransitionRefused) as refused:
        callable_(*args, **kwargs)
    return refused.value.reasons


# --- Submission and the frozen snapshot ----------------------------------------------


def test_submitting_freezes_the_report_and_moves_the_plan_to_closure_review(
    ready_plan, quality_lead, group
):
    report = closure.submit_for_closure(plan=ready_plan, by=quality_lead, group=group)
    ready_plan.refresh_from_db()
    assert ready_plan.status == Plan.Status.CLOSURE_REVIEW
    assert report.group == group and report.submitted_by == quality_lead
    content = json.loads(report.content_json)
    assert content["plan"]["reference"] == ready_plan.reference
    assert content["submission"]["group"] == group.name
    assert content["actions_summary"] == {"total": 1, "completed": 1, "verified": 1}
    assert content["residual_risks"][0]["monitoring"].startswith("Monthly spot check")
    latest = Plan.history.filter(id=ready_plan.pk).latest("history_date")
    assert latest.history_user == quality_lead
    assert latest.history_change_reason == "Submit for closure"


def test_the_hash_shown_can_be_recomputed_from_the_stored_snapshot(report):
    report.refresh_from_db()
    assert report.sha256 == snapshot_digest(report.content_json, report.content_html)
    assert report.is_intact()
    report.content_html += "<p>tampered</p>"
    assert not report.is_intact()


def test_changing_the_plan_after_submission_leaves_the_snapshot_intact(
    report, quality_lead, ready_plan
):
    before = (report.content_json, report.content_html, report.sha256)
    pdf_before = report.pdf_sha256
    plan_services.add_trigger(
        plan=ready_plan,
        by=quality_lead,
        fields={
            "kind": "complaint",
            "reference": "C-9",
            "occurred_on": timezone.localdate(),
            "description": "A later complaint",
        },
    )
    action = ready_plan.actions.get()
    plan_services.save_action(
        plan=ready_plan, by=quality_lead, action=action, fields={"completion_note": "Rewritten"}
    )
    plan_services.revise_criteria(
        plan=ready_plan,
        by=quality_lead,
        reason="Commissioner asked for six months",
        criteria_fields={"sustain_months": 6},
        indicators=[],
    )
    report.refresh_from_db()
    assert (report.content_json, report.content_html, report.sha256) == before
    assert report.pdf_sha256 == pdf_before and report.is_intact()
    # The live report does see the changes, with the revision and its reason.
    live = closure.compile_report(ready_plan)
    assert any(t["reference"] == "C-9" for t in live["triggers"])
    assert live["revisions"][0]["reason"] == "Commissioner asked for six months"
    assert live["revisions"][0]["changes"][0] == "Closure criteria: sustain period (months): 3 → 6"


def test_submission_is_refused_when_the_group_lacks_authority(ready_plan, quality_lead, weak_group):
    reasons = _refusal(
        closure.submit_for_closure, plan=ready_plan, by=quality_lead, group=weak_group
    )
    assert "needs sign-off at “Governance group” or higher" in reasons[0]
    ready_plan.refresh_from_db()
    assert ready_plan.status == Plan.Status.LIVE
    assert not ClosureReport.objects.exists()


def test_submission_is_refused_with_every_blocker_and_leaves_nothing_behind(
    plan, quality_lead, group
):
    reasons = _refusal(closure.submit_for_closure, plan=plan, by=quality_lead, group=group)
    assert any("No results yet" in r for r in reasons)
    assert any("action is not completed" in r for r in reasons)
    assert any("required kind" in r for r in reasons)
    assert any("learning summary" in r for r in reasons)
    assert "Record the residual risks and how each is monitored." in reasons
    services.record_residual_risk(plan=plan, by=quality_lead, description="R", monitoring="M")
    reasons = _refusal(closure.submit_for_closure, plan=plan, by=quality_lead, group=group)
    assert "Record the residual risks and how each is monitored." not in reasons
    assert reasons  # the rest still stand
    plan.refresh_from_db()
    assert plan.status == Plan.Status.LIVE
    assert not ClosureReport.objects.exists()


def test_a_written_rationale_sets_aside_only_the_criteria_verdict(plan, quality_lead, group):
    """Criteria not met may go to the group with a rationale; open actions may not."""
    factories.add_required_evidence(plan, by=quality_lead)
    factories.write_learning_summary(plan, by=quality_lead)
    factories.record_residual_risk(plan, by=quality_lead)
    reasons = _refusal(
        closure.submit_for_closure,
        plan=plan,
        by=quality_lead,
        group=group,
        override_rationale="Commissioner agreed",
    )
    assert reasons == ["1 action is not completed: Refresher training."]
    factories.complete_actions(plan, by=quality_lead)
    report = closure.submit_for_closure(
        plan=plan, by=quality_lead, group=group, override_rationale="Commissioner agreed"
    )
    assert report.override_rationale == "Commissioner agreed"
    frozen = json.loads(report.content_json)["verdicts"]["readiness"]
    assert any("No results yet" in r for r in frozen)


def test_submission_emails_the_group_after_commit(
    ready_plan, quality_lead, group, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = closure.submit_for_closure(plan=ready_plan, by=quality_lead, group=group)
    assert mailoutbox == []
    for callback in callbacks:
        callback()
    submitted = [m for m in mailoutbox if "for decision" in m.subject]
    assert len(submitted) == 1
    assert sorted(submitted[0].to) == [
        "chair@example.test",
        "delegate@example.test",
        "member@example.test",
    ]
    assert report.sha256 in submitted[0].body


# --- Signing: refusals -----------------------------------------------------------------


def test_the_submitter_cannot_sign_even_as_chair(report, quality_lead, meeting):
    Membership.objects.filter(group=report.group, role="chair").update(role="member")
    Membership.objects.create(group=report.group, user=quality_lead, role="chair")
    reasons = _refusal(_sign, report, meeting, quality_lead)
    assert any(r.startswith("You submitted this report, so you cannot sign") for r in reasons)
    assert not Decision.objects.exists()


def test_a_wrong_password_signs_nothing(report, chair, meeting):
    reasons = _refusal(_sign, report, meeting, chair, password="not-my-password")
    assert reasons == ["The password or the code was not right. Nothing was signed."]
    report.plan.refresh_from_db()
    assert report.plan.status == Plan.Status.CLOSURE_REVIEW
    assert not Decision.objects.exists()


def test_a_group_without_the_authority_cannot_sign(report, chair, meeting, quality_lead):
    # The criteria were raised to board level after submission.
    plan_services.revise_criteria(
        plan=report.plan,
        by=quality_lead,
        reason="Board asked to sign this one off",
        criteria_fields={"sign_off_level": SignOffLevel.BOARD},
        indicators=[],
    )
    reasons = _refusal(_sign, report, meeting, chair)
    assert any("needs “Board” or higher" in r for r in reasons)
    assert not Decision.objects.exists()


def test_a_member_who_is_not_chair_cannot_sign(report, governance_member, meeting):
    reasons = _refusal(_sign, report, meeting, governance_member)
    assert reasons == [
        "Only the chair of Safeguarding Governance Group (or a delegate recorded as such) may sign."
    ]


def test_return_needs_reasons(report, chair, meeting):
    reasons = _refusal(_sign, report, meeting, chair, outcome=Decision.Outcome.RETURN, reasons=" ")
    assert reasons == ["Give the reasons for returning the plan."]


def test_step_down_needs_what_is_monitored_and_a_floor_per_indicator(report, chair, meeting):
    reasons = _refusal(_sign, report, meeting, chair, outcome=Decision.Outcome.STEP_DOWN)
    assert "Say what will be monitored: a floor for each indicator, or an audit theme." in reasons
    indicator = report.plan.indicators.get()
    reasons = _refusal(
        _sign,
        report,
        meeting,
        chair,
        outcome=Decision.Outcome.STEP_DOWN,
        monitoring_indicators=[indicator],
    )
    assert reasons == ["Set a floor for every indicator that will be monitored."]


def test_a_signed_decision_cannot_be_signed_again(report, chair, delegate, meeting):
    _sign(report, meeting, chair)
    reasons = _refusal(
        _sign, report, meeting, delegate, outcome=Decision.Outcome.RETURN, reasons="Second thoughts"
    )
    assert reasons == ["This closure report has already been decided."]
    assert Decision.objects.count() == 1


def test_signing_a_returned_report_is_refused(report, chair, delegate, meeting):
    _sign(report, meeting, chair, outcome=Decision.Outcome.RETURN, reasons="Evidence thin")
    report.plan.refresh_from_db()
    assert report.plan.status == Plan.Status.LIVE
    reasons = _refusal(_sign, report, meeting, delegate)
    assert reasons == ["This closure report has already been decided."]


def test_a_meeting_of_another_group_is_refused(report, chair, weak_group, quality_lead):
    other = services.schedule_meeting(
        group=weak_group, held_on=timezone.localdate(), by=quality_lead
    )
    reasons = _refusal(_sign, report, other, chair)
    assert "Choose a meeting of the group the report was put to." in reasons


# --- Signing: successes ------------------------------------------------------------------


def test_the_chair_closes_the_plan_with_a_recorded_signature(
    report_with_pdf, chair, meeting, mailoutbox, django_capture_on_commit_callbacks
):
    report = report_with_pdf
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decision = _sign(report, meeting, chair)
    assert mailoutbox == []  # nothing is sent inside the transaction
    plan = Plan.objects.get(pk=report.plan_id)
    assert plan.status == Plan.Status.CLOSED
    assert decision.signed_by == chair and decision.signed_as == Membership.Role.CHAIR
    assert decision.snapshot_sha256 == report.sha256
    assert decision.pdf_sha256 == report.pdf_sha256 != ""
    assert decision.signature_meaning.startswith(
        f"I confirm closure of {plan.reference} on the evidence listed"
    )
    latest = Plan.history.filter(id=plan.pk).latest("history_date")
    assert latest.history_user == chair
    assert latest.history_change_reason == "Sign off closure: signed by Chair Tester (chair)"
    record = decision.history.get()
    assert record.history_user == chair
    assert record.history_change_reason == "Signed: Close"
    report.refresh_from_db()
    assert report.status == ClosureReport.Status.DECIDED
    assert meeting.agenda_items.filter(report=report).exists()
    for callback in callbacks:
        callback()
    decided = [m for m in mailoutbox if "close (Safeguarding Governance Group)" in m.subject]
    assert len(decided) == 1
    assert "lead@example.test" in decided[0].to and "chair@example.test" not in decided[0].to
    assert decision.signature_meaning in decided[0].body


def test_a_delegate_chair_may_sign(report, delegate, meeting):
    decision = _sign(report, meeting, delegate)
    assert decision.signed_as == Membership.Role.DELEGATE_CHAIR


def test_return_with_reasons_sends_the_plan_back_to_live(report, chair, meeting):
    decision = _sign(
        report, meeting, chair, outcome=Decision.Outcome.RETURN, reasons="Only one re-audit."
    )
    plan = Plan.objects.get(pk=report.plan_id)
    assert plan.status == Plan.Status.LIVE
    assert decision.reasons == "Only one re-audit."
    latest = Plan.history.filter(id=plan.pk).latest("history_date")
    assert latest.history_change_reason == "Return: Only one re-audit."
    assert latest.history_user == chair


def test_step_down_records_the_monitoring_period_for_audits(report, chair, meeting):
    indicator = report.plan.indicators.get()
    decision = _sign(
        report,
        meeting,
        chair,
        outcome=Decision.Outcome.STEP_DOWN,
        monitoring_indicators=[indicator],
        monitoring_floors={indicator.pk: "90"},
        monitoring_audit_theme="Care planning audit",
    )
    assert Plan.objects.get(pk=report.plan_id).status == Plan.Status.MONITORING
    assert decision.monitoring_indicator_ids == [indicator.pk]
    assert decision.monitoring_floors == {str(indicator.pk): "90"}
    assert decision.monitoring_ends_on == timezone.localdate() + relativedelta(months=6)
    assert "steps down into monitoring until" in decision.signature_meaning


def test_a_stepped_down_plan_can_be_submitted_for_final_closure(
    report, chair, meeting, quality_lead, group
):
    indicator = report.plan.indicators.get()
    _sign(
        report,
        meeting,
        chair,
        outcome=Decision.Outcome.STEP_DOWN,
        monitoring_indicators=[indicator],
        monitoring_floors={indicator.pk: 90},
    )
    reasons = _refusal(closure.submit_for_closure, plan=report.plan, by=quality_lead, group=group)
    assert reasons[0].startswith("The monitoring period runs until")
    with time_machine.travel(timezone.now() + relativedelta(months=6, days=2)):
        final = closure.submit_for_closure(plan=report.plan, by=quality_lead, group=group)
    assert final.transition == "submit_for_final_closure"
    assert Plan.objects.get(pk=report.plan_id).status == Plan.Status.CLOSURE_REVIEW


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_chairs_signing_at_once_give_exactly_one_decision(quality_lead, oakfield):
    from tests.governance.conftest import make_ready

    chair = factories.UserFactory(username="chair", role="governance_member")
    delegate = factories.UserFactory(username="delegate", role="governance_member")
    group = services.create_group(by=quality_lead, name="SGG", authority_level=3)
    services.set_membership(group=group, user=chair, role="chair", by=quality_lead)
    services.set_membership(group=group, user=delegate, role="delegate_chair", by=quality_lead)
    meeting = services.schedule_meeting(
        group=group, held_on=timezone.localdate(), by=quality_lead, attendees=[chair, delegate]
    )
    plan = make_ready(factories.live_plan(owner=quality_lead, locations=[oakfield]), quality_lead)
    report = closure.submit_for_closure(plan=plan, by=quality_lead, group=group)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def sign(user, outcome, reasons):
        try:
            barrier.wait()
            _sign(report, meeting, user, outcome=outcome, reasons=reasons)
            outcomes.append("signed")
        except TransitionRefused as refused:
            outcomes.append(refused.reasons[0])
        finally:
            close_old_connections()

    threads = [
        threading.Thread(target=sign, args=(chair, "close", "")),
        threading.Thread(target=sign, args=(delegate, "return", "Not yet")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["This closure report has already been decided.", "signed"]
    assert Decision.objects.filter(report=report).count() == 1


def test_render_is_idempotent_and_never_replaces_a_frozen_pdf(report_with_pdf):
    report = report_with_pdf
    assert report.pdf_ready and report.pdf.name
    again = services.render_snapshot_pdf(report_id=report.pk)
    assert again.pdf.name == report.pdf.name and again.pdf_sha256 == report.pdf_sha256


# --- The e-signature: password and a fresh code, lockout per person ---------------------


def test_signing_needs_a_fresh_authenticator_code(report, chair, meeting):
    factories.signing_code(chair)  # the chair has an authenticator
    reasons = _refusal(_sign, report, meeting, chair, otp_token="000000")
    assert reasons == ["The password or the code was not right. Nothing was signed."]
    code = factories.signing_code(chair)
    _sign(report, meeting, chair, otp_token=code)
    assert Decision.objects.filter(report=report, signed_by=chair).exists()


def test_a_used_code_cannot_sign_again(report, chair, delegate, meeting, quality_lead):
    from django_otp import match_token

    code = factories.signing_code(chair)
    assert match_token(chair, code) is not None  # used once, e.g. to sign in
    reasons = _refusal(_sign, report, meeting, chair, otp_token=code)
    assert reasons == ["The password or the code was not right. Nothing was signed."]


def test_five_wrong_passwords_lock_signing_for_the_signer_and_are_recorded(
    report, chair, meeting
):
    from core.models import SecurityEvent

    for _ in range(5):
        reasons = _refusal(_sign, report, meeting, chair, password="guess")
        assert reasons == ["The password or the code was not right. Nothing was signed."]
    # The sixth try, with the right password and a fresh code, is refused: locked.
    reasons = _refusal(_sign, report, meeting, chair)
    assert reasons[0].startswith("Signing is locked after too many wrong passwords or codes.")
    assert SecurityEvent.objects.filter(kind="sign_failed", user=chair).count() == 5
    assert SecurityEvent.objects.filter(kind="sign_locked", user=chair).count() == 1
    assert not Decision.objects.exists()
    # Fifteen minutes after the last failure, the right password and code sign.
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=16)):
        _sign(report, meeting, chair)
    assert Decision.objects.filter(report=report).exists()


def test_a_signer_without_an_authenticator_is_told_to_set_one_up(report, chair, meeting):
    reasons = _refusal(_sign, report, meeting, chair, otp_token="123456")
    assert reasons[0].startswith("Set up two-step verification")
