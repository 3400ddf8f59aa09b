"""Random input into the main forms never causes a server error: each answer is a page
(with messages) or a redirect. Bounded: a fixed number of examples per form."""

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import factories

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Text a user (or an attacker) might type: unicode, quotes, NULs, huge numbers, dates.
text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1e309",
            "NaN",
            "2026-02-30",
            "99999999999999999999",
            "'; DROP TABLE plans_plan; --",
            "<script>alert(1)</script>",
            "\x00",
            "=1+1",
        ]
    ),
)


def _no_server_error(response):
    assert response.status_code < 500, response.status_code


@pytest.fixture
def lead_client(client, quality_lead, oakfield):
    client.force_login(quality_lead)
    return client


@FUZZ
@given(
    data=st.dictionaries(
        st.sampled_from(
            [
                "plan-title",
                "plan-summary",
                "plan-theme",
                "plan-locations",
                "plan-owner",
                "plan-likelihood",
                "plan-impact",
                "plan-opened_on",
                "plan-target_date",
                "plan-key_questions",
                "criteria-success_in_practice",
                "criteria-sustain_months",
                "criteria-min_reaudits",
                "criteria-sign_off_level",
                "criteria-required_evidence",
                "triggers-TOTAL_FORMS",
                "triggers-0-kind",
                "triggers-0-occurred_on",
                "indicators-TOTAL_FORMS",
                "indicators-0-target",
                "indicators-0-measure_type",
                "actions-TOTAL_FORMS",
                "actions-0-due_date",
                "actions-0-owner",
            ]
        ),
        text,
        max_size=24,
    )
)
def test_create_plan_form_never_errors(lead_client, data):
    _no_server_error(lead_client.post(reverse("plans:create"), data))


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "q",
                "status",
                "location",
                "theme",
                "owner",
                "risk",
                "overdue",
                "stale",
                "sort",
                "page",
                "export",
            ]
        ),
        text,
        max_size=8,
    )
)
def test_register_filters_never_error(lead_client, params):
    _no_server_error(lead_client.get(reverse("plans:register"), params))


@FUZZ
@given(
    data=st.dictionaries(
        st.sampled_from(
            [
                "description",
                "owner",
                "due_date",
                "status",
                "completion_note",
                "reason",
                "merged_into",
                "note",
            ]
        ),
        text,
        max_size=8,
    )
)
def test_plan_change_forms_never_error(lead_client, quality_lead, oakfield, data):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    action = plan.actions.get()
    for url in [
        reverse("plans:add_action", args=[plan.reference]),
        reverse("plans:edit_action", args=[plan.reference, action.pk]),
        reverse("plans:verify_action", args=[plan.reference, action.pk]),
        reverse("plans:transition", args=[plan.reference, "withdraw"]),
        reverse("plans:add_trigger", args=[plan.reference]),
    ]:
        _no_server_error(lead_client.post(url, data))


@FUZZ
@given(username=text, password=text)
def test_login_form_never_errors(client, db, username, password):
    _no_server_error(client.post(reverse("login"), {"username": username, "password": password}))
