"""Two web nodes, as a provider group runs them: two gunicorn servers (each with two
worker processes and a connection pool) on one PostgreSQL, one Redis and one object
store (moto_server's bucket), started as real processes. Whatever one node does, the
other shows at once: a file uploaded through one downloads through the other, a result
logged through one is on the other's plan page (no stale figures, although the other
had just served that page), and a sign-out on one ends the session on both."""

from __future__ import annotations

import datetime
import hashlib
import http.cookiejar
import json
import re

import pytest

from tests.core.smtp_server import SMTPServer
from tests.core.worker import Browser, Stack, private_database
from tests.factories import PASSWORD

SETUP = """
import json
from tests import factories
place = factories.LocationFactory(name="Oakfield House")
lead = factories.UserFactory(username="lead", role="quality_lead")
plan = factories.live_plan(owner=lead, locations=[place])
factories.meet_criteria(plan, by=lead)
print(json.dumps({"reference": plan.reference, "indicator": plan.indicators.get().pk}))
"""

# The first result of the plan's page is 95.0% (19 of 20); this one is unmistakable.
NEW_RESULT = "35.0% (7 of 20)"
EVIDENCE = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n% supervision notes, node A\n"


def _jar(browser: Browser) -> http.cookiejar.CookieJar:
    return next(
        handler.cookiejar
        for handler in browser.opener.handlers
        if isinstance(getattr(handler, "cookiejar", None), http.cookiejar.CookieJar)
    )


def _session_cookie(browser: Browser) -> str:
    return next(cookie.value for cookie in _jar(browser) if cookie.name == "sessionid")


def _on(browser: Browser, base: str) -> Browser:
    """The same person (the same cookies) talking to another node."""
    browser.base = base
    return browser


def _signed_out(status: int, url: str) -> bool:
    return status == 200 and "/accounts/login/" in url


@pytest.mark.postgres
@pytest.mark.redis
def test_two_gunicorn_nodes_share_files_figures_and_sign_outs(
    tmp_path, private_redis_url, bucket
):
    env = {
        "STORAGE_URL": bucket.url,
        # Each node's processes keep a pool of connections (Django's psycopg pool).
        "DB_POOL_MAX_SIZE": "2",
        "DB_CONN_MAX_AGE": "0",
    }
    with (
        SMTPServer() as smtp,
        private_database("two_nodes") as database,
        Stack(
            tmp_path, smtp, name="nodes", redis_url=private_redis_url, database=database, env=env
        ) as stack,
    ):
        plan = stack.setup(SETUP)
        node_a = stack.start_gunicorn("a")
        node_b = stack.start_gunicorn("b")
        page = f"/plans/{plan['reference']}/"
        person = Browser(node_a)
        person.log_in("lead", PASSWORD)

        # Signed in on A, and so on B: one session, kept where both nodes read it.
        status, _, html = _on(person, node_b).get(page)
        assert status == 200 and "95.0% (19 of 20)" in html and NEW_RESULT not in html
        assert _on(person, node_b).get(page)[2].count("95.0% (19 of 20)") >= 1  # warm on B

        # A result logged through A is on B's plan page at once.
        yesterday = datetime.date.today() - datetime.timedelta(days=1)
        status, url, html = _on(person, node_a).submit(
            f"/audits/plans/{plan['reference']}/log/",
            {
                "indicator": plan["indicator"],
                "measured_on": yesterday.isoformat(),
                "numerator": "7",
                "denominator": "20",
                "source": "re_audit",
                "notes": "Re-audit, night staff",
            },
        )
        assert status == 200 and page in url and NEW_RESULT in html, html[:3000]
        status, _, html = _on(person, node_b).get(page)
        assert status == 200 and NEW_RESULT in html, "node B showed figures from before"

        # A file uploaded through A downloads through B, byte for byte, from the bucket.
        status, url, html = _on(person, node_a).upload(
            f"/audits/plans/{plan['reference']}/evidence/new/",
            "upload",
            "Supervision notes.pdf",
            EVIDENCE,
            {
                "kind": "supervision",
                "title": "Supervision notes",
                "occurred_on": yesterday.isoformat(),
                "description": "",
            },
        )
        assert status == 200 and page in url, html[:3000]
        [(pk, stored)] = stack.sql("SELECT id, file FROM audits_evidenceitem")
        assert bucket.stored() == [stored] and bucket.read(stored) == EVIDENCE
        assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*.*"))
        status, _, html = _on(person, node_b).get(page)
        assert f"/audits/evidence/{pk}/download/" in html  # B lists it too
        request = _on(person, node_b).opener.open(
            f"{node_b}/audits/evidence/{pk}/download/", timeout=60
        )
        with request as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/pdf"
            assert 'filename="Supervision notes.pdf"' in response.headers["Content-Disposition"]
            assert hashlib.sha256(response.read()).digest() == hashlib.sha256(EVIDENCE).digest()

        # Signing out on B ends the session on A too, even for a copy of the cookie.
        copied = _session_cookie(person)
        status, _, html = _on(person, node_b).get(page)
        status, url, _ = person.post("/accounts/logout/", {}, page=html)
        assert _signed_out(status, url)
        assert _signed_out(*_on(person, node_a).get(page)[:2])
        replay = Browser(node_a)
        _jar(replay).set_cookie(_cookie("sessionid", copied))
        assert _signed_out(*replay.get(page)[:2])

        statuses = json.dumps(person.statuses)
        assert 500 not in person.statuses, statuses
        for name in ("a", "b"):
            log = (tmp_path / f"gunicorn-{name}.log").read_text(errors="replace")
            assert not re.search(r"Traceback|\[ERROR\]", log), log[-3000:]


def _cookie(name: str, value: str) -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        version=0, name=name, value=value, port=None, port_specified=False,
        domain="127.0.0.1", domain_specified=False, domain_initial_dot=False, path="/",
        path_specified=True, secure=False, expires=None, discard=True, comment=None,
        comment_url=None, rest={}, rfc2109=False,
    )  # fmt: skip
