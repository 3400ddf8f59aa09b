"""Who may see or do what in governance. Views get every object through these
functions; outsiders get the same 404 as for something that does not exist.

- Quality leads and administrators see every group, meeting and closure report, and
  prepare and submit reports.
- Governance members see the groups they belong to, those groups' meetings and the
  closure reports put to those groups. Chairs and delegate chairs also run meetings
  and sign decisions (the signing rules themselves are in ``services.sign_decision``).
- Everyone else sees nothing here.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from governance.models import ClosureReport, GovernanceGroup, Meeting, Membership
from plans.access import get_plan_for_user
from plans.models import Plan, User


def _active(user: User) -> bool:
    return user.is_authenticated and user.is_active


def sees_all_governance(user: User) -> bool:
    return _active(user) and user.is_organisation_lead


def groups_for_user(user: User) -> QuerySet[GovernanceGroup]:
    """Groups the user may see: all for quality leads and administrators, otherwise the
    groups they belong to."""
    if sees_all_governance(user):
        return GovernanceGroup.objects.all()
    if not _active(user) or not user.is_governance_member:
        return GovernanceGroup.objects.none()
    return GovernanceGroup.objects.filter(memberships__user=user).distinct()


def signing_group_ids(user: User) -> set[int]:
    """Groups in which ``user`` is chair or a recorded delegate chair."""
    if not _active(user):
        return set()
    return set(
        Membership.objects.filter(user=user, role__in=Membership.SIGNING_ROLES).values_list(
            "group_id", flat=True
        )
    )


def chairs_a_group(user: User) -> bool:
    """Signs decisions (chair or delegate chair of any group): such users must use
    two-step verification (qip_portal/accounts/middleware.py)."""
    return bool(signing_group_ids(user))


def visible_reports(user: User) -> QuerySet[ClosureReport]:
    if sees_all_governance(user):
        return ClosureReport.objects.all()
    return ClosureReport.objects.filter(group__in=groups_for_user(user))


def visible_meetings(user: User) -> QuerySet[Meeting]:
    if sees_all_governance(user):
        return Meeting.objects.all()
    return Meeting.objects.filter(group__in=groups_for_user(user))


def get_group_for_user(user: User, pk: int) -> GovernanceGroup:
    try:
        return groups_for_user(user).get(pk=pk)
    except GovernanceGroup.DoesNotExist:
        raise Http404("No such group.") from None


def get_meeting_for_user(user: User, pk: int) -> Meeting:
    try:
        return visible_meetings(user).select_related("group").get(pk=pk)
    except Meeting.DoesNotExist:
        raise Http404("No such meeting.") from None


def get_report_for_user(user: User, pk: int) -> ClosureReport:
    try:
        return visible_reports(user).select_related("plan", "group", "submitted_by").get(pk=pk)
    except ClosureReport.DoesNotExist:
        raise Http404("No such closure report.") from None


def can_prepare_reports(user: User) -> bool:
    """Compile, record residual risks and submit: the quality lead's job."""
    return sees_all_governance(user)


def get_plan_for_report(user: User, reference: str) -> Plan:
    """A plan whose live closure report the user may read: quality leads and
    administrators, and governance members who belong to at least one group."""
    if not (can_prepare_reports(user) or groups_for_user(user).exists()):
        raise Http404("No such plan.")
    return get_plan_for_user(user, reference)


def can_manage_group(user: User) -> bool:
    """Create groups and change their membership."""
    return sees_all_governance(user)


def can_run_meetings(user: User, group: GovernanceGroup) -> bool:
    """Schedule meetings, set the agenda, record attendance and minutes."""
    return sees_all_governance(user) or group.pk in signing_group_ids(user)


def can_sign_for(user: User, report: ClosureReport) -> bool:
    """Offer the signing form (the service re-checks every rule when it signs)."""
    return report.is_awaiting_decision and report.group_id in signing_group_ids(user)
