"""Trigram indexes for the register search (PostgreSQL only).

The search matches any part of a word ("fall" finds "falls") in a plan's reference,
title and summary and in its triggers' references, case-insensitively: Django writes
that as ``UPPER(column) LIKE UPPER('%fall%')``. A GIN index over ``UPPER(column)`` with
pg_trgm's ``gin_trgm_ops`` answers exactly that expression, so each column is searched
through its index instead of reading every plan. SQLite (tests, ``make run`` without
PostgreSQL) has no such index and keeps the plain scan, with the same results.

Raw SQL rather than ``Meta.indexes``: the same migration must apply on SQLite, where
the operator class does not exist. The model state is unchanged.
"""

from django.db import migrations

INDEXES = [
    ("plans_plan_reference_trgm", "plans_plan", "reference"),
    ("plans_plan_title_trgm", "plans_plan", "title"),
    ("plans_plan_summary_trgm", "plans_plan", "summary"),
    ("plans_trigger_reference_trgm", "plans_trigger", "reference"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in INDEXES:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (UPPER("{column}"::text) '
            "gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("plans", "0006_plan_criteria_met_since")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
