"""Who may see or change what. Every view gets its objects through these functions;
outsiders get the same 404 as for something that does not exist, so the portal never
confirms that a plan they may not see exists."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from core import security
from plans.models import Location, Plan, User


def visible_locations(user: User) -> QuerySet[Location]:
    if user.sees_all_locations:
        return Location.objects.all()
    return user.locations.all()


def visible_plans(user: User) -> QuerySet[Plan]:
    """Plans the user may read: all for organisation-wide roles, otherwise plans at
    any of the user's locations."""
    if not user.is_authenticated or not user.is_active:
        return Plan.objects.none()
    if user.sees_all_locations:
        return Plan.objects.all()
    location_ids = list(user.locations.values_list("pk", flat=True))
    return Plan.objects.filter(
        pk__in=Plan.locations.through.objects.filter(location_id__in=location_ids).values("plan_id")
    )


def visible_plan_q(user: User, field: str = "plan") -> Q:
    """A filter on a model related to plans through ``field``, keeping the rows of the
    plans ``user`` may read (as ``visible_plans``), with no subquery at all for
    organisation-wide roles (the home page's counts join plans once, not twice)."""
    if user.is_authenticated and user.is_active and user.sees_all_locations:
        return Q()
    return Q(**{f"{field}__in": visible_plans(user)})


def can_open_plans(user: User) -> bool:
    return user.is_authenticated and user.is_organisation_lead


def can_edit_plan(user: User, plan: Plan) -> bool:
    """Edit details, criteria and actions. Managers may work on plans at their
    locations; viewers and governance members only read."""
    return user.may_write_plans and not plan.is_final


def can_edit_plan_details(user: User, plan: Plan) -> bool:
    """Title, summary, risk, criteria: the quality lead's contract, not the manager's."""
    return user.is_organisation_lead and not plan.is_final


def get_plan_for_user(
    user: User, reference: str, *, write: bool = False, related: tuple[str, ...] = ()
) -> Plan:
    """The plan, if ``user`` may see it (and change it, when ``write``); otherwise 404.
    ``related``: further relations to read in the same query (``select_related``).

    A read-only user asking to write also gets 404 rather than 403: the answer must
    not depend on whether the plan exists."""
    try:
        plan = (
            visible_plans(user)
            .select_related("theme", "owner", *related)
            .get(reference=reference)
        )
    except Plan.DoesNotExist:
        _refused(user, reference, "read")
        raise Http404("No such plan.") from None
    if write and not user.may_write_plans:
        _refused(user, reference, "change")
        raise Http404("No such plan.")
    return plan


def _refused(user: User, reference: str, what: str) -> None:
    """Record a refusal of a plan that exists (a mistyped address is not an event)."""
    if Plan.objects.filter(reference=reference).exists():
        security.record("permission_refused", user=user, detail=f"{what} {reference}"[:500])


def assignable_owners(user: User) -> QuerySet[User]:
    """People who may own a plan or an action."""
    return User.objects.filter(is_active=True).exclude(role=User.Role.VIEWER)
