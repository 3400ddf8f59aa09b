"""Nothing may rewrite history: no QuerySet.update() of a history-tracked field (which
django-simple-history would not record), and on PostgreSQL the application role cannot
UPDATE or DELETE history rows at all."""

import ast
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from simple_history.models import registered_models

ROOT = Path(__file__).resolve().parents[2]
APPS = ["core", "plans", "audits", "governance", "learning", "qip_portal"]
# A line may opt out only with this marker and a reason (e.g. a non-history model
# whose field happens to share a name with a tracked one).
MARKER = "# history-safe"


def _tracked_fields() -> set[str]:
    names: set[str] = set()
    for model in registered_models.values():
        if not hasattr(model, "history"):  # m2m through tables are tracked via their owner
            continue
        history = model.history.model
        for field in history._meta.get_fields():
            if not field.name.startswith("history_") and field.name != "id":
                names.add(field.name)
                names.add(getattr(field, "attname", field.name))
    return names


def test_no_queryset_update_of_a_history_tracked_field():
    tracked = _tracked_fields()
    assert {"status", "title"} <= tracked and "last_activity_at" not in tracked
    offences = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            lines = source.splitlines()
            for node in ast.walk(ast.parse(source)):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "update"
                ):
                    hit = {k.arg for k in node.keywords if k.arg} & tracked
                    if hit and MARKER not in lines[node.lineno - 1]:
                        offences.append(
                            f"{path.relative_to(ROOT)}:{node.lineno} updates {sorted(hit)}"
                        )
    assert offences == [], "Use save() (so history records it) instead of:\n" + "\n".join(offences)


@pytest.mark.postgres
def test_history_tables_are_append_only_for_the_application_role(quality_lead, oakfield):
    from tests import factories

    role = "qip_app_history_test"
    with connection.cursor() as cursor:
        cursor.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
        )
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        cursor.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    call_command("protect_history", role=role)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {role}")
        plan = factories.live_plan(owner=quality_lead, locations=[oakfield])  # inserts history
        assert plan.history.count() >= 2
        for statement in [
            "UPDATE plans_historicalplan SET title = 'rewritten'",
            "DELETE FROM plans_historicalplan",
        ]:
            with (
                pytest.raises(ProgrammingError, match="permission denied"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(statement)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
