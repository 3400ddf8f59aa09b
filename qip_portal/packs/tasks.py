"""The evidence pack render task: thin, loads by id and calls the service."""

from celery import shared_task

from qip_portal.packs import evidence_pack


@shared_task(name="qip_portal.pack_tasks.render_evidence_pack")
def render_evidence_pack(pack_id: int) -> str:
    return evidence_pack.render_pack(pack_id=pack_id).render_status
