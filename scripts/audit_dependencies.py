"""Audit the installed dependencies for known vulnerabilities (pip-audit), with the
waivers kept in ``.ci/dependency-waivers.txt``; what ``.ci/run`` calls.

    python scripts/audit_dependencies.py [pip-audit options, e.g. -s osv]

Exit status: 0 when no finding is left after the waivers; 1 when any is (each printed
with its fix versions); 2 when the waiver file is malformed or a waiver has expired (a
waiver is a decision with a date to revisit it, never a permanent silence).

When the vulnerability service cannot be reached (as on a network that only reaches
the package index), pip-audit marks every package "could not be audited" and finds
nothing; this script says so loudly instead of printing "No known vulnerabilities",
and fails if ``REQUIRE_DEPENDENCY_AUDIT`` is set (set it where the service is reachable).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAIVERS = ROOT / ".ci" / "dependency-waivers.txt"


@dataclass(frozen=True)
class Waiver:
    vuln_id: str
    expires: datetime.date
    reason: str


class WaiverError(ValueError):
    pass


def read_waivers(path: Path, today: datetime.date) -> list[Waiver]:
    """One waiver per line: ``ID  YYYY-MM-DD  reason`` (the date it must be looked at
    again); ``#`` starts a comment. Refuses a line without a reason or a valid date,
    and any waiver past its date."""
    waivers = []
    if not path.exists():
        return waivers
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or len(parts[2].strip()) < 10:
            raise WaiverError(
                f"{path.name} line {number}: expected 'ID  YYYY-MM-DD  reason' "
                "with a reason of at least ten characters"
            )
        vuln_id, date, reason = parts
        try:
            expires = datetime.date.fromisoformat(date)
        except ValueError:
            raise WaiverError(f"{path.name} line {number}: {date!r} is not a date") from None
        if expires < today:
            raise WaiverError(
                f"{path.name} line {number}: the waiver of {vuln_id} expired on {expires}: "
                "upgrade, or review the reason and set a new date"
            )
        waivers.append(Waiver(vuln_id, expires, reason.strip()))
    return waivers


def audit(extra_args: list[str], *, waivers: list[Waiver]) -> dict:
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--skip-editable",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        *[arg for w in waivers for arg in ("--ignore-vuln", w.vuln_id)],
        *extra_args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603 - our own interpreter and fixed arguments
    if not done.stdout.strip().startswith("{"):
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"pip-audit did not run (exit {done.returncode})")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None, *, today: datetime.date | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    today = today or datetime.date.today()
    try:
        waivers = read_waivers(WAIVERS, today)
    except WaiverError as exc:
        print(f"Dependency audit: {exc}")
        return 2
    try:
        report = audit(argv, waivers=waivers)
    except RuntimeError as exc:
        print(f"Dependency audit: {exc}; failing rather than passing unchecked.")
        return 1
    # The project itself (installed editable) is not a dependency: leave it out.
    dependencies = [
        d for d in report.get("dependencies", []) if "editable" not in d.get("skip_reason", "")
    ]
    findings = [(d, v) for d in dependencies for v in d.get("vulns", [])]
    unchecked = [d for d in dependencies if "skip_reason" in d]
    checked = len(dependencies) - len(unchecked)
    for w in waivers:
        print(f"Waived until {w.expires}: {w.vuln_id} ({w.reason})")
    for dependency, vuln in findings:
        fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version yet"
        print(
            f"VULNERABLE: {dependency['name']} {dependency['version']}: {vuln['id']} "
            f"(fixed in: {fixes}) {vuln.get('description', '')[:200]}"
        )
    print(
        f"Dependency audit: {checked} of {len(dependencies)} packages checked, "
        f"{len(findings)} finding(s) not waived, {len(waivers)} waiver(s)."
    )
    if unchecked:
        print(
            f"WARNING: {len(unchecked)} package(s) could not be checked, e.g. "
            f"{unchecked[0]['name']}: {unchecked[0]['skip_reason']}. An unchecked package "
            "is not a clean one (is the vulnerability service reachable from here?)."
        )
    if findings:
        return 1
    if unchecked and os.environ.get("REQUIRE_DEPENDENCY_AUDIT"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
