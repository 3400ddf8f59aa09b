"""Sections that higher apps add to the plan page (measurements and charts from
``audits``, the closure report from ``governance``, learning from ``learning``).

``plans`` never imports upwards: an app registers a panel from its
``AppConfig.ready()``, and the plan page renders every registered panel in order.
A panel's ``context`` function must run a fixed number of queries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plans.models import Plan, User


@dataclass(frozen=True)
class Panel:
    name: str
    template: str
    context: Callable[[Plan, User], dict]
    order: int = 100


@dataclass(frozen=True)
class RenderedPanel:
    name: str
    template: str
    data: dict


_PANELS: dict[str, Panel] = {}


def register_panel(panel: Panel) -> None:
    _PANELS[panel.name] = panel


def panels_for(plan: Plan, user: User) -> list[RenderedPanel]:
    ordered = sorted(_PANELS.values(), key=lambda p: (p.order, p.name))
    return [RenderedPanel(p.name, p.template, p.context(plan, user)) for p in ordered]
