"""The dependency audit gate of .ci/run (scripts/audit_dependencies.py): pip-audit run
for real against a local OSV-compatible vulnerability service that reports one
vulnerability in the installed Django, so the gate is proven to fail on a finding,
to pass once it is waived with a reason and a date, and to refuse bad waivers, on a
network where the real vulnerability services cannot be reached."""

import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts import audit_dependencies

VULN_ID = "GHSA-qipt-test-0001"


class _FakeOSV(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = {}
        if query["package"]["name"] == "django":
            body = {
                "vulns": [
                    {
                        "id": VULN_ID,
                        "summary": "A test vulnerability in Django",
                        "affected": [
                            {
                                "package": {"name": "django", "ecosystem": "PyPI"},
                                "ranges": [
                                    {
                                        "type": "ECOSYSTEM",
                                        "events": [{"introduced": "0"}, {"fixed": "99.0"}],
                                    }
                                ],
                            }
                        ],
                    }
                ]
            }
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def osv(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOSV)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(audit_dependencies, "WAIVERS", tmp_path / "waivers.txt")
    args = [
        "-s",
        "osv",
        "--osv-url",
        f"http://127.0.0.1:{server.server_address[1]}/v1/query",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--timeout",
        "10",
    ]
    yield args, tmp_path / "waivers.txt"
    server.shutdown()


def test_a_finding_fails_the_gate_until_it_is_waived_with_a_reason(osv, capsys):
    args, waivers = osv
    assert audit_dependencies.main(args) == 1
    out = capsys.readouterr().out
    assert "VULNERABLE: django" in out and VULN_ID in out and "99.0" in out
    assert "could not be checked" not in out  # every package was really asked about

    waivers.write_text(f"{VULN_ID}  2099-01-01  Test only: the code path is not used here\n")
    assert audit_dependencies.main(args) == 0
    out = capsys.readouterr().out
    assert "VULNERABLE" not in out and f"Waived until 2099-01-01: {VULN_ID}" in out


@pytest.mark.parametrize(
    "line, message",
    [
        (f"{VULN_ID}  2020-01-01  Accepted while the upgrade is tested", "expired on 2020-01-01"),
        (f"{VULN_ID}  2099-01-01", "with a reason"),
        (f"{VULN_ID}  soon  Accepted while the upgrade is tested", "is not a date"),
    ],
)
def test_expired_or_malformed_waivers_fail_the_gate(osv, capsys, line, message):
    args, waivers = osv
    waivers.write_text(f"# comment\n{line}\n")
    assert audit_dependencies.main(args, today=datetime.date(2026, 11, 27)) == 2
    assert message in capsys.readouterr().out


def test_unreachable_service_is_reported_not_passed_off_as_clean(tmp_path, monkeypatch, capsys):
    """Nothing listening: every package is unchecked, which is said plainly, and is a
    failure where the audit is required."""
    monkeypatch.setattr(audit_dependencies, "WAIVERS", tmp_path / "none.txt")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    args = ["-s", "osv", "--osv-url", "http://127.0.0.1:9/v1/query", "--timeout", "2"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    monkeypatch.delenv("REQUIRE_DEPENDENCY_AUDIT", raising=False)
    # pip-audit gives up on a refused connection: a failure, never a silent pass.
    assert audit_dependencies.main(args) == 1
    assert "failing rather than passing unchecked" in capsys.readouterr().out


def test_packages_that_could_not_be_checked_are_said_plainly(monkeypatch, capsys):
    """What the default service gives on a network that reaches only the package index:
    every package skipped. Said plainly, and a failure where the audit is required."""
    report = {
        "dependencies": [
            {"name": "django", "skip_reason": "Dependency not found on PyPI: django (5.2)"},
            {"name": "qip-portal", "skip_reason": "distribution marked as editable"},
        ]
    }
    monkeypatch.setattr(audit_dependencies, "audit", lambda args, waivers: report)
    monkeypatch.delenv("REQUIRE_DEPENDENCY_AUDIT", raising=False)
    assert audit_dependencies.main([]) == 0
    out = capsys.readouterr().out
    assert "0 of 1 packages checked" in out and "1 package(s) could not be checked" in out
    monkeypatch.setenv("REQUIRE_DEPENDENCY_AUDIT", "1")
    assert audit_dependencies.main([]) == 1
