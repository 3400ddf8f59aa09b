import hashlib
import socket

import pytest

from governance import pdf
from plans import services as plan_services
from qip_portal import closure
from tests.governance.conftest import make_ready

EVIL = "http://evil.example/pixel.png"
LOCAL = "file:///etc/passwd"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the PDF renderer tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_snapshot_pdf_renders_and_its_hash_is_recorded(report_with_pdf):
    report = report_with_pdf
    data = report.pdf.open("rb").read()
    assert data.startswith(b"%PDF")
    assert hashlib.sha256(data).hexdigest() == report.pdf_sha256
    assert report.pdf_ready


def test_user_text_with_urls_is_escaped_and_nothing_outside_is_fetched(
    plan, quality_lead, group, no_network, monkeypatch, django_capture_on_commit_callbacks
):
    hostile = f'<img src="{EVIL}"><img src="{LOCAL}"><link rel="stylesheet" href="{EVIL}">'
    plan_services.add_trigger(
        plan=plan,
        by=quality_lead,
        fields={
            "kind": "incident",
            "reference": "INC-1",
            "occurred_on": plan.opened_on,
            "description": hostile,
        },
    )
    make_ready(plan, quality_lead)
    fetched: list[str] = []
    original = pdf.StaticOnlyFetcher.fetch

    def spy(self, url, headers=None):
        fetched.append(url)
        return original(self, url, headers)

    monkeypatch.setattr(pdf.StaticOnlyFetcher, "fetch", spy)
    with django_capture_on_commit_callbacks(execute=True):
        report = closure.submit_for_closure(plan=plan, by=quality_lead, group=group)
    report.refresh_from_db()
    assert "&lt;img src=&quot;http://evil.example/pixel.png&quot;&gt;" in report.content_html
    assert f'src="{EVIL}"' not in report.content_html
    assert report.pdf_ready and report.pdf.open("rb").read().startswith(b"%PDF")
    # Only our own stylesheet was asked for, and it was served from disk.
    assert fetched == [pdf.STATIC_PREFIX + "report-print.css"]


def test_the_fetcher_refuses_remote_file_and_data_urls_even_in_raw_html(no_network):
    fetcher = pdf.StaticOnlyFetcher()
    body = (
        f'<img src="{EVIL}"><img src="{LOCAL}"><img src="data:image/png;base64,AAAA">'
        '<img src="/static/vendor/bootstrap/bootstrap.min.css">'
        '<img src="https://qip-portal.invalid/static/governance/../../../etc/passwd">'
    )
    data = pdf.render_pdf(body_html=body, title="Hostile", fetcher=fetcher)
    assert data.startswith(b"%PDF")
    assert EVIL in fetcher.refused and LOCAL in fetcher.refused
    assert any(url.startswith("data:") for url in fetcher.refused)
    assert len(fetcher.refused) == 5
