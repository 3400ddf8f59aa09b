"""How a person's role is named where it is shown (the page header, people lists): a
governance member by what they are in their groups ("Chair, Safeguarding Governance
Group"), everyone else by their role."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from governance.models import Membership
from plans.models import User

# A chair first: it is what a person is asked to do most.
_ORDER = {Membership.Role.CHAIR: 0, Membership.Role.DELEGATE_CHAIR: 1, Membership.Role.MEMBER: 2}


def role_labels(users: Iterable[User]) -> dict[int, str]:
    """``{user id: label}``; one query, for the governance members among ``users``."""
    users = list(users)
    governance = [u.pk for u in users if u.role == User.Role.GOVERNANCE_MEMBER]
    held: dict[int, list[Membership]] = defaultdict(list)
    if governance:
        for membership in Membership.objects.filter(user_id__in=governance).select_related("group"):
            held[membership.user_id].append(membership)
    labels = {}
    for user in users:
        memberships = sorted(held.get(user.pk, []), key=lambda m: (_ORDER[m.role], m.group.name))
        labels[user.pk] = (
            "; ".join(f"{m.get_role_display()}, {m.group.name}" for m in memberships)
            or user.get_role_display()
        )
    return labels


def role_label(user: User) -> str:
    return role_labels([user])[user.pk]
