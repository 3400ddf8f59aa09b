"""Make every history table append-only for the application's database role.

On PostgreSQL, run migrations as the owner role and the portal as a separate role;
then ``manage.py protect_history --role qip_app`` revokes UPDATE, DELETE and TRUNCATE
on every django-simple-history table from that role, so not even a bug (or an attacker
with the application's credentials) can rewrite the record of who did what."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from simple_history.models import registered_models


def history_tables() -> list[str]:
    return sorted(
        model.history.model._meta.db_table
        for model in registered_models.values()
        if hasattr(model, "history")
    )


class Command(BaseCommand):
    help = "Revoke UPDATE, DELETE and TRUNCATE on history tables from the application role."

    def add_arguments(self, parser):
        parser.add_argument("--role", required=True, help="The role the portal connects as.")
        parser.add_argument(
            "--print-sql", action="store_true", help="Print the SQL, change nothing."
        )

    def handle(self, *args, role: str, print_sql: bool, **options):
        if connection.vendor != "postgresql":
            raise CommandError("History tables can be protected this way on PostgreSQL only.")
        quote = connection.ops.quote_name
        statements = [
            f"REVOKE UPDATE, DELETE, TRUNCATE ON {quote(table)} FROM {quote(role)}"
            for table in history_tables()
        ]
        if print_sql:
            self.stdout.write(";\n".join(statements) + ";")
            return
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"{len(statements)} history tables are now append-only for {role}.")
