"""A portal process for tests/core/test_freshness_processes.py: reads one JSON command
per line on stdin, answers one JSON line on stdout. It views pages with Django's test
client (signed in as the user named) and writes through the services, against the
database and the Redis cache its environment names, as a web node or worker would."""

from __future__ import annotations

import datetime
import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qip_portal.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

setup_test_environment()  # the test client's hosts; nothing else changes
from plans.models import Plan, User  # noqa: E402


def handle(command: dict) -> dict:
    op = command["op"]
    if op == "setup":
        from tests import factories

        lead = factories.UserFactory(username="lead", role="quality_lead")
        place = factories.LocationFactory(name="Oakfield House")
        plans = [
            factories.live_plan(owner=lead, locations=[place], title=f"Falls plan {i}")
            for i in range(2)
        ]
        return {"references": [p.reference for p in plans]}
    if op == "view":
        client = Client()
        client.force_login(User.objects.get(username=command["username"]))
        with CaptureQueriesContext(connection) as queries:
            response = client.get(command["path"])
        text = response.content.decode()
        return {
            "status": response.status_code,
            "queries": len(queries.captured_queries),
            "found": {needle: needle in text for needle in command.get("needles", [])},
        }
    if op == "add_action":
        from plans import services

        plan = Plan.objects.get(reference=command["reference"])
        lead = User.objects.get(username="lead")
        services.save_action(
            plan=plan,
            by=lead,
            fields={
                "description": command["description"],
                "owner": lead,
                "due_date": timezone.localdate() + datetime.timedelta(days=14),
                "status": "open",
            },
        )
        return {"ok": True}
    if op == "rename_indicator":  # a bulk path: QuerySet.update()
        from plans.models import Indicator

        Indicator.objects.filter(plan__reference=command["reference"]).update(name=command["name"])
        return {"ok": True}
    raise ValueError(op)


for line in sys.stdin:
    if not line.strip():
        continue
    try:
        answer = handle(json.loads(line))
    except Exception as error:  # noqa: BLE001 - reported to the test, which fails
        answer = {"error": repr(error)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
