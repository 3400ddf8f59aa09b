"""Who may see or conduct audits. Managers conduct at their own locations only;
viewers (and governance members) read; an outsider gets the same 404 as for an audit
that does not exist, on every audit URL."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from audits.tools.models import Audit, AuditTool
from plans.models import Location, User


def conduct_locations(user: User) -> QuerySet[Location]:
    """Where ``user`` may conduct audits: every active location for quality leads and
    administrators, their own for managers, none for readers."""
    if not user.is_authenticated or not user.may_write_plans:
        return Location.objects.none()
    if user.sees_all_locations:
        return Location.objects.filter(is_active=True)
    return user.locations.filter(is_active=True)


def can_conduct(user: User, location: Location) -> bool:
    return conduct_locations(user).filter(pk=location.pk).exists()


def can_manage_tools(user: User) -> bool:
    """Tools are the quality leads' (and administrators'): import, revise, compliance."""
    return user.is_authenticated and user.is_organisation_lead


def get_audit_for_user(user: User, pk: int, *, write: bool = False) -> Audit:
    """The audit, if ``user`` may read it (and conduct or correct it, when ``write``);
    otherwise 404, whether or not it exists."""
    try:
        audit = (
            Audit.objects.visible_to(user)
            .select_related("version__tool", "location", "plan", "started_by", "submitted_by")
            .get(pk=pk)
        )
    except Audit.DoesNotExist:
        raise Http404("No such audit.") from None
    if write and not can_conduct(user, audit.location):
        raise Http404("No such audit.")
    return audit


def get_tool_for_user(user: User, pk: int, *, manage: bool = False) -> AuditTool:
    """Every signed-in person may read a tool; only quality leads manage one."""
    if not user.is_authenticated or (manage and not can_manage_tools(user)):
        raise Http404("No such tool.")
    try:
        return AuditTool.objects.select_related("theme", "quality_statement", "regulation").get(
            pk=pk
        )
    except AuditTool.DoesNotExist:
        raise Http404("No such tool.") from None
