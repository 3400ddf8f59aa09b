"""Tolerate models that are ahead of their migrations (work in progress elsewhere in
the tree): after ``migrate``, create any table or column a model has and the database
lacks, and say so. On a tree whose migrations are complete this does nothing."""

from __future__ import annotations

from django.apps import apps
from django.db import connection


def ensure_schema(log=print) -> list[str]:
    done: list[str] = []
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
    models = [m for m in apps.get_models(include_auto_created=True) if m._meta.managed]
    with connection.schema_editor() as editor:
        for model in models:
            if model._meta.proxy:
                continue
            table = model._meta.db_table
            if table not in tables:
                editor.create_model(model)
                tables.add(table)
                done.append(f"created table {table}")
                continue
            with connection.cursor() as cursor:
                columns = {
                    c.name for c in connection.introspection.get_table_description(cursor, table)
                }
            for field in model._meta.local_fields:
                if field.column and field.column not in columns:
                    editor.add_field(model, field)
                    done.append(f"added column {table}.{field.column}")
    for line in done:
        log(f"  schema (models ahead of migrations): {line}")
    return done
