"""Adding "a group meets at most once a day" to a database that already holds two
meetings of a group on one date: the second is folded into the first (its attendees and
minutes kept), so the migration never stops a deploy and nothing recorded is lost."""

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from governance import services as governance
from governance.models import Meeting

BEFORE = [("governance", "0003_closure_report_pdf_recovery")]
AFTER = [("governance", "0005_decision_signed_record")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _migrate_to_the_latest():
    """Every app's latest migration: going back to BEFORE also unapplied what depends
    on it in other apps, and the rest of the suite runs in this database."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_a_second_meeting_on_one_day_is_folded_into_the_first(quality_lead, governance_member):
    group = governance.create_group(by=quality_lead, name="Quality Committee", authority_level=3)
    day = datetime.date(2026, 9, 4)
    old = _migrate(BEFORE)
    try:
        OldMeeting = old.get_model("governance", "Meeting")
        first = OldMeeting.objects.create(
            group_id=group.pk, held_on=day, minutes="Morning.", created_by_id=quality_lead.pk
        )
        second = OldMeeting.objects.create(
            group_id=group.pk, held_on=day, minutes="Afternoon.", created_by_id=quality_lead.pk
        )
        second.attendees.add(governance_member.pk)
    finally:
        _migrate(AFTER)
        _migrate_to_the_latest()
    (kept,) = Meeting.objects.filter(group=group, held_on=day)
    assert kept.pk == first.pk
    assert kept.minutes == "Morning.\n\nAfternoon."
    assert list(kept.attendees.all()) == [governance_member]
