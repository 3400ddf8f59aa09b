"""The security events list: administrators only, filtered by kind, person and dates,
exported as CSV that a spreadsheet cannot run, in a constant number of queries."""

import csv
import datetime
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import SecurityEvent

URL = "/security-events/"


@pytest.fixture(autouse=True)
def no_two_step(settings):
    settings.MFA_REQUIRED_ROLES = set()  # enforcement has its own tests


def _event(kind, username, *, days_ago=0, detail="", ip="192.0.2.1"):
    event = SecurityEvent.objects.create(
        kind=kind, username=username, detail=detail, ip_address=ip
    )
    SecurityEvent.objects.filter(pk=event.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=days_ago)
    )
    return event


def test_only_administrators_see_the_list(
    client, administrator, quality_lead, manager, viewer, governance_member
):
    assert reverse("security_events") == URL
    for user in [quality_lead, manager, viewer, governance_member]:
        client.force_login(user)
        assert client.get(URL).status_code == 404, user.role
        assert client.get(URL, {"export": "csv"}).status_code == 404, user.role
    client.force_login(administrator)
    response = client.get(URL)
    assert response.status_code == 200
    assert 'href="/security-events/"' in response.content.decode()  # in the menu


def test_filters_by_kind_person_and_dates(client, administrator):
    _event("login_failed", "chair", days_ago=0)
    _event("login_failed", "chair", days_ago=10)
    _event("sign_failed", "chair", days_ago=1)
    _event("role_changed", "david", days_ago=2, detail="member → chair of Board")
    client.force_login(administrator)

    def shown(**params):
        page = client.get(URL, params).context["page"]
        return sorted((e.kind, e.username) for e in page.object_list)

    assert shown(kind="login_failed", user="chair") == [
        ("login_failed", "chair"),
        ("login_failed", "chair"),
    ]
    today = timezone.localdate()
    assert shown(
        kind="login_failed",
        date_from=(today - datetime.timedelta(days=3)).isoformat(),
        date_to=today.isoformat(),
    ) == [("login_failed", "chair")]
    assert shown(
        kind="login_failed",
        date_from=(today - datetime.timedelta(days=3)).strftime("%d/%m/%Y"),  # as typed
    ) == [("login_failed", "chair")]
    assert shown(user="DAV") == [("role_changed", "david")]
    assert shown(kind="role_changed") == [("role_changed", "david")]
    body = client.get(URL, {"kind": "role_changed"}).content.decode()
    assert "Role or group membership changed" in body and "member → chair of Board" in body


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "no-such-kind"},
        {"date_from": "2026-02-30"},
        {"date_from": "9999-12-31", "date_to": "0001-01-01"},
        {"user": "a\x00b"},
        {"user": "x" * 5000},
        {"page": "-1"},
        {"page": "NaN"},
    ],
)
def test_filters_not_understood_are_said_and_ignored(client, administrator, params):
    _event("login", "chair")
    client.force_login(administrator)
    response = client.get(URL, params)
    assert response.status_code == 200
    assert client.get(URL, {**params, "export": "csv"}).status_code == 200


def test_the_csv_has_the_filtered_rows_and_no_formulas(client, administrator):
    _event("login_failed", '=HYPERLINK("http://evil.example","click")', ip="203.0.113.5")
    _event("login_failed", "@SUM(A1:A9)")
    _event("login", "chair")
    client.force_login(administrator)
    response = client.get(URL, {"kind": "login_failed", "export": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["When (UTC)", "Kind", "Username", "Address", "Page", "Detail"]
    assert sorted(row[2] for row in rows[1:]) == [
        "'=HYPERLINK(\"http://evil.example\",\"click\")",
        "'@SUM(A1:A9)",
    ]
    assert {row[1] for row in rows[1:]} == {"Failed sign-in"}
    # Exporting them is itself recorded.
    assert SecurityEvent.objects.filter(
        kind="export", user=administrator, detail="security events as csv"
    ).exists()


@pytest.mark.parametrize("rows", [1, 50])
def test_the_list_and_the_csv_cost_the_same_queries_at_any_size(
    client, administrator, django_assert_max_num_queries, rows
):
    SecurityEvent.objects.bulk_create(
        SecurityEvent(kind="login_failed", username=f"user{i}", ip_address="192.0.2.1")
        for i in range(rows)
    )
    client.force_login(administrator)
    client.get(URL)  # the session is read and refreshed once
    with django_assert_max_num_queries(8):
        assert client.get(URL, {"kind": "login_failed"}).status_code == 200
    with django_assert_max_num_queries(8):
        response = client.get(URL, {"kind": "login_failed", "export": "csv"})
        assert len(response.content.decode().splitlines()) == rows + 1
