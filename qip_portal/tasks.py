"""Thin Celery tasks for the closure workflow (they call a sweep) and for the plan page."""

import logging

from celery import shared_task

from qip_portal import closure

logger = logging.getLogger(__name__)


@shared_task
def announce_ready_plans() -> str:
    return closure.announce_ready_plans()


@shared_task(name="qip_portal.tasks.rerender_plan_page", ignore_result=True)
def rerender_plan_page(plan_id: int) -> list[str]:
    """Render a changed plan's page again for its recent viewers' classes
    (``qip_portal.pages.plans.rerender``). Only hurries things along: if it fails (it is
    logged, never raised, so an in-process run never breaks the request that queued
    it) or never runs, the next viewer renders the page as before."""
    from qip_portal.pages import plans as plan_pages

    try:
        return plan_pages.rerender(plan_id)
    except Exception:  # noqa: BLE001
        logger.exception("The plan page of plan %s could not be rendered again.", plan_id)
        return []
