import datetime
import threading

import pytest
from django.db import connection

from plans import lifecycle, services
from plans.models import Plan
from tests import factories


def _history_count(plan) -> int:
    return Plan.history.filter(id=plan.pk).count()


def test_activate_refuses_incomplete_criteria_and_changes_nothing(quality_lead, oakfield):
    plan = factories.draft_plan(owner=quality_lead, locations=[oakfield], indicators=[])
    before = _history_count(plan)
    with pytest.raises(services.TransitionRefused) as refused:
        services.activate_plan(plan=plan, by=quality_lead)
    assert "Add at least one indicator with a direction and a target." in refused.value.reasons
    plan.refresh_from_db()
    assert plan.status == Plan.Status.DRAFT
    assert not plan.criteria.is_locked
    assert _history_count(plan) == before


def test_activate_locks_criteria_and_records_who_and_when(quality_lead, oakfield):
    plan = factories.draft_plan(owner=quality_lead, locations=[oakfield])
    plan = services.activate_plan(plan=plan, by=quality_lead)
    assert plan.status == Plan.Status.LIVE
    assert plan.criteria.is_locked
    latest = Plan.history.filter(id=plan.pk).latest("history_date")
    assert latest.history_user == quality_lead
    assert latest.history_change_reason == "Activate"
    assert latest.status == Plan.Status.LIVE


def test_activating_a_live_plan_is_refused_with_a_clear_message(plan, quality_lead):
    before = _history_count(plan)
    with pytest.raises(services.TransitionRefused) as refused:
        services.activate_plan(plan=plan, by=quality_lead)
    assert refused.value.reasons == ["Activate is not possible while the plan is live."]
    assert _history_count(plan) == before


def test_withdraw_needs_a_reason(plan, quality_lead):
    with pytest.raises(services.TransitionRefused) as refused:
        services.withdraw_plan(plan=plan, by=quality_lead, reason="  ")
    assert "Give a reason." in refused.value.reasons
    plan.refresh_from_db()
    assert plan.status == Plan.Status.LIVE


def test_withdraw_into_another_plan_links_it_and_keeps_the_reason(plan, quality_lead, oakfield):
    other = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Wider plan")
    plan = services.withdraw_plan(plan=plan, by=quality_lead, reason="Duplicate", merged_into=other)
    assert plan.status == Plan.Status.WITHDRAWN
    assert plan.merged_into == other
    reasons = list(Plan.history.filter(id=plan.pk).values_list("history_change_reason", flat=True))
    assert "Withdraw: Duplicate" in reasons
    assert f"Merged into {other.reference}" in reasons


def test_a_withdrawn_plan_is_final(plan, quality_lead):
    services.withdraw_plan(plan=plan, by=quality_lead, reason="Opened in error")
    for name in ["activate", "withdraw"]:
        with pytest.raises(services.TransitionRefused):
            services.perform_transition(plan=plan, name=name, by=quality_lead, reason="again")


def test_a_manager_may_not_withdraw_a_plan(plan, manager):
    with pytest.raises(services.TransitionRefused) as refused:
        services.withdraw_plan(plan=plan, by=manager, reason="Not needed")
    assert "Your role may not withdraw a plan." in refused.value.reasons


def test_the_plan_page_offers_only_the_plans_own_transitions(plan, quality_lead, oakfield):
    names = [t.name for t in lifecycle.plan_page_transitions(plan, quality_lead)]
    assert names == ["withdraw"]
    draft = factories.draft_plan(owner=quality_lead, locations=[oakfield])
    assert [t.name for t in lifecycle.plan_page_transitions(draft, quality_lead)] == [
        "activate",
        "withdraw",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "submit_for_closure",
        "sign_off_closure",
        "step_down",
        "return_to_live",
        "reopen",
        "submit_for_final_closure",
    ],
)
def test_closure_steps_are_performed_only_by_the_closure_workflow(plan, quality_lead, name):
    """plans cannot judge what closure needs (results, report, learning): a composed
    step is refused unless the closure workflow (qip_portal/closure/workflow.py) checked it."""
    before = _history_count(plan)
    with pytest.raises(services.TransitionRefused) as refused:
        services.perform_transition(plan=plan, name=name, by=quality_lead, reason="r")
    assert "goes through the closure workflow" in refused.value.reasons[0]
    plan.refresh_from_db()
    assert plan.status == Plan.Status.LIVE and _history_count(plan) == before


def test_transition_email_goes_to_owner_after_commit(
    quality_lead, manager, oakfield, mailoutbox, django_capture_on_commit_callbacks
):
    plan = factories.draft_plan(owner=manager, locations=[oakfield])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.activate_plan(plan=plan, by=quality_lead)
    assert mailoutbox == []  # nothing is sent inside the transaction
    for callback in callbacks:
        callback()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["manager@example.test"]
    assert "activate" in mailoutbox[0].subject.lower()
    assert plan.get_absolute_url() in mailoutbox[0].body


def test_revising_locked_criteria_needs_a_reason_kept_in_history(plan, quality_lead):
    with pytest.raises(services.TransitionRefused):
        services.revise_criteria(
            plan=plan,
            by=quality_lead,
            reason="",
            criteria_fields={"sustain_months": 6},
            indicators=[],
        )
    services.revise_criteria(
        plan=plan,
        by=quality_lead,
        reason="Commissioner asked for six months",
        criteria_fields={"sustain_months": 6},
        indicators=[],
    )
    plan.criteria.refresh_from_db()
    assert plan.criteria.sustain_months == 6
    latest = plan.criteria.history.latest("history_date")
    assert latest.history_change_reason == "Criteria revised: Commissioner asked for six months"
    assert latest.history_user == quality_lead


def test_references_are_sequential_per_year_and_never_reused(quality_lead, oakfield):
    first = factories.draft_plan(owner=quality_lead, locations=[oakfield])
    services.withdraw_plan(plan=first, by=quality_lead, reason="Opened in error")
    second = factories.draft_plan(owner=quality_lead, locations=[oakfield], title="Another")
    year = first.opened_on.year
    assert first.reference == f"QIP-{year}-0001"
    assert second.reference == f"QIP-{year}-0002"


def test_flags_are_computed_from_data(plan, quality_lead, settings):
    from django.utils import timezone

    action = plan.actions.get()
    today = timezone.localdate()
    assert action.is_overdue(action.due_date + datetime.timedelta(days=1))
    assert not action.is_overdue(action.due_date)
    assert (
        Plan.objects.with_overdue_actions(action.due_date + datetime.timedelta(days=1)).count() == 1
    )
    later = timezone.now() + datetime.timedelta(days=settings.STALE_PLAN_DAYS + 1)
    assert plan.is_stale(later) and not plan.is_stale()
    assert list(Plan.objects.stale(later)) == [plan]
    assert plan.age_days(today) == (today - plan.opened_on).days


def test_completing_an_action_is_kept_apart_from_verifying_it(plan, manager):
    action = plan.actions.get()
    with pytest.raises(services.TransitionRefused):
        services.verify_action_effective(action=action, by=manager, note="Looked at records")
    services.save_action(
        plan=plan,
        by=manager,
        action=action,
        fields={"status": "completed", "completion_note": "Training delivered"},
    )
    action.refresh_from_db()
    assert action.is_completed and not action.is_verified_effective
    services.verify_action_effective(action=action, by=manager, note="Re-audit shows 98%")
    action.refresh_from_db()
    assert action.is_verified_effective and action.verified_by == manager


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["activate", "withdraw"])
def test_two_people_acting_at_once_exactly_one_succeeds(name, quality_lead, oakfield):
    other_lead = factories.UserFactory(username="lead2", role="quality_lead")
    plan = factories.draft_plan(owner=quality_lead, locations=[oakfield])
    if name == "withdraw":
        plan = services.activate_plan(plan=plan, by=quality_lead)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(user):
        try:
            barrier.wait()
            if name == "activate":
                services.activate_plan(plan=plan, by=user)
            else:
                services.withdraw_plan(plan=plan, by=user, reason=f"by {user.username}")
            outcomes.append("ok")
        except services.TransitionRefused:
            outcomes.append("refused")
        finally:
            connection.close()  # each thread has its own connection: release it

    threads = [threading.Thread(target=act, args=(u,)) for u in (quality_lead, other_lead)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["ok", "refused"]
    target = "live" if name == "activate" else "withdrawn"
    assert Plan.history.filter(id=plan.pk, status=target).count() == 1


def test_a_long_reason_is_kept_short_in_history(plan, quality_lead):
    services.withdraw_plan(plan=plan, by=quality_lead, reason="Merged into the wider plan. " * 20)
    plan.refresh_from_db()
    assert plan.status == Plan.Status.WITHDRAWN
    reasons = Plan.history.filter(id=plan.pk).values_list("history_change_reason", flat=True)
    assert all(len(r) <= 100 for r in reasons if r)
