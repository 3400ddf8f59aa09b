"""Every URL of the project, requested (GET) as each role and as an outsider, compared
with the table below. A URL pattern without an entry fails the test, so a new page
cannot ship without someone deciding who may see it.

Roles: anon (not signed in), lead (quality lead), manager (of the plan's location),
outsider (manager of another location), viewer (read only, the plan's location),
member (governance member of the plan's group), admin (administrator).

Codes: 200 page; 302 redirect (to sign-in for anon, or onward); 404 not found or not
theirs (the same answer, so nothing leaks); 405 a POST-only change asked with GET.
The Django admin is left to Django's staff check and tested by one entry.
Run with MATRIX_DISCOVER=1 to print what each URL answers (to review, never to paste
in blindly)."""

import datetime
import os

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from audits import services as audits_services
from core.files import detect_type
from governance import services as governance
from governance.models import Membership
from learning import services as learning
from learning.models import Acknowledgement, LearningReview
from qip_portal import closure
from qip_portal.packs import sharing
from tests import factories
from tests.audits.factories import PDF_BYTES, measure, upload
from tests.learning.helpers import close_plan, write_summary

ROLES = ["anon", "lead", "manager", "outsider", "viewer", "member", "admin"]


def codes(anon, lead, manager, outsider, viewer, member, admin):
    return dict(zip(ROLES, [anon, lead, manager, outsider, viewer, member, admin], strict=True))


EVERYONE = codes(302, 200, 200, 200, 200, 200, 200)
PUBLIC = codes(200, 200, 200, 200, 200, 200, 200)
# A plan's page and what hangs off it: the plan's people read it, the outsider gets 404.
PLAN_READ = codes(302, 200, 200, 404, 200, 200, 200)
PLAN_WRITE = codes(302, 200, 200, 404, 404, 404, 200)  # managers work on their plans
PLAN_AUTHOR = codes(302, 200, 404, 404, 404, 404, 200)  # the quality lead's contract
POST_ONLY = codes(302, 405, 405, 405, 405, 405, 405)
GOVERNANCE = codes(302, 200, 404, 404, 404, 200, 200)

TABLE = {
    "home": EVERYONE,
    "healthz": PUBLIC,
    "login": codes(200, 302, 302, 302, 302, 302, 302),
    "logout": codes(302, 405, 405, 405, 405, 405, 405),
    "password_change": EVERYONE,
    "password_change_done": EVERYONE,
    "password_reset": PUBLIC,
    "password_reset_done": PUBLIC,
    "password_reset_confirm": PUBLIC,
    "password_reset_complete": PUBLIC,
    "mfa_settings": EVERYONE,
    "mfa_setup": EVERYONE,
    # A token that is not valid: sent back to ask for a new link.
    "mfa_setup_confirm": codes(302, 302, 302, 302, 302, 302, 302),
    "sign_in_unlock_request": PUBLIC,
    "sign_in_unlock": codes(302, 302, 302, 302, 302, 302, 302),
    "security_events": codes(302, 404, 404, 404, 404, 404, 200),
    "mfa_verify": codes(302, 302, 302, 302, 302, 302, 302),  # nothing to verify: move on
    "mfa_recovery_codes": POST_ONLY,
    "mfa_disable": POST_ONLY,
    "digest_preference": POST_ONLY,
    "plans:register": EVERYONE,
    "plans:create": codes(302, 200, 404, 404, 404, 404, 200),
    "plans:detail": PLAN_READ,
    "plans:edit": PLAN_AUTHOR,
    "plans:edit_criteria": PLAN_AUTHOR,
    "plans:add_indicator": PLAN_AUTHOR,
    "plans:add_trigger": PLAN_AUTHOR,
    "plans:add_action": PLAN_WRITE,
    "plans:edit_action": PLAN_WRITE,
    "plans:verify_action": PLAN_WRITE,
    "plans:transition": PLAN_WRITE,
    # Audits: managers log and import for their plans; readers may read and download.
    "audits:due": EVERYONE,
    "audits:log": PLAN_WRITE,
    "audits:log_audit": PLAN_WRITE,
    "audits:add_note": PLAN_WRITE,
    "audits:recalculate_limits": PLAN_AUTHOR,  # the quality lead's judgement
    "audits:plan_icons": PLAN_READ,
    "audits:edit_measurement": PLAN_WRITE,
    "audits:export": PLAN_READ,
    "audits:add_evidence": PLAN_WRITE,
    "audits:download_evidence": PLAN_READ,
    "audits:import": PLAN_WRITE,
    "audits:import_template": PLAN_WRITE,
    "audits:import_detail": PLAN_WRITE,
    "audits:import_commit": POST_ONLY,
    "audits:import_retry": POST_ONLY,
    "audits:reopen": PLAN_AUTHOR,  # re-opening after deterioration is the quality lead's
    # Audit tools: everyone reads tools; quality leads manage them. Audits at Oakfield:
    # its people read them, managers there (and leads) conduct; outsiders get 404.
    "audits:tool_list": EVERYONE,
    "audits:tool_detail": EVERYONE,
    "audits:tool_export": EVERYONE,
    "audits:compliance": PLAN_AUTHOR,
    "audits:compliance_export": PLAN_AUTHOR,
    "audits:tool_import": PLAN_AUTHOR,
    "audits:tool_new": PLAN_AUTHOR,
    "audits:tool_edit": PLAN_AUTHOR,
    "audits:tool_import_detail": PLAN_AUTHOR,
    "audits:audit_list": EVERYONE,
    "audits:audit_start": codes(302, 200, 200, 200, 404, 404, 200),  # at their own locations
    "audits:audit_detail": PLAN_READ,
    "audits:audit_record": PLAN_WRITE,
    "audits:audit_answer": POST_ONLY,
    "audits:audit_correct": PLAN_WRITE,
    "audits:audit_review": PLAN_WRITE,
    "audits:audit_submit": POST_ONLY,
    "audits:raise_action": PLAN_WRITE,
    "audits:feed_indicator": PLAN_AUTHOR,
    "audits:audit_pdf_request": POST_ONLY,
    "audits:audit_pdf_status": PLAN_READ,
    # No audit PDF has been rendered in this world: nobody gets one.
    "audits:audit_pdf": codes(302, 404, 404, 404, 404, 404, 404),
    # Governance: the quality lead, administrators and members of the deciding group.
    "governance:home": GOVERNANCE,
    "governance:groups": GOVERNANCE,
    "governance:group": GOVERNANCE,
    "governance:group_create": codes(302, 200, 404, 404, 404, 404, 200),
    "governance:member_add": POST_ONLY,
    "governance:member_remove": POST_ONLY,
    "governance:meeting_create": POST_ONLY,
    "governance:meeting": GOVERNANCE,
    "governance:agenda_add": POST_ONLY,
    "governance:plan_report": GOVERNANCE,
    "governance:risk_add": POST_ONLY,
    "governance:risk_remove": POST_ONLY,
    "governance:submit": POST_ONLY,
    "governance:reports": GOVERNANCE,
    "governance:report": GOVERNANCE,
    # No PDF has been rendered in this world (it renders after commit): nobody gets one.
    "governance:report_pdf": codes(302, 404, 404, 404, 404, 404, 404),
    "governance:report_snapshot_pdf": codes(302, 404, 404, 404, 404, 404, 404),
    "governance:report_pdf_status": GOVERNANCE,
    "governance:report_pdf_retry": POST_ONLY,
    # Deciding is for the group's chair or delegate only; none of these roles is one.
    "governance:decide": codes(302, 404, 404, 404, 404, 404, 404),
    # Only a chair of the group that stepped a plan down, once its monitoring ended
    # without enough data (tests/qip_portal/test_monitoring_evidence.py): none here.
    "governance:monitoring_decision": codes(302, 404, 404, 404, 404, 404, 404),
    # Learning: the library is for everyone; a plan's learning for the plan's people.
    "learning:library": EVERYONE,
    "learning:to_read": EVERYONE,
    "learning:reviews": EVERYONE,
    "learning:acknowledge": POST_ONLY,
    "learning:review": PLAN_READ,
    "learning:review_agenda": POST_ONLY,
    "learning:detail": PLAN_READ,
    "learning:summary": PLAN_WRITE,
    "learning:share": PLAN_AUTHOR,
    "learning:add_embedding": PLAN_WRITE,
    "learning:edit_embedding": PLAN_WRITE,
    # Inspection evidence packs: readers of the plan; the register pack for quality leads.
    "packs:plan": PLAN_READ,
    "packs:plan_zip": PLAN_READ,
    "packs:register": codes(302, 200, 404, 404, 404, 404, 200),
    # No pack has been rendered in this world: nothing to show or download.
    "packs:status": codes(302, 404, 404, 404, 404, 404, 404),
    "packs:pdf": codes(302, 404, 404, 404, 404, 404, 404),
    "packs:retry": POST_ONLY,
    # Share links: made and withdrawn by quality leads and administrators who read the plan.
    "packs:shares": PLAN_AUTHOR,
    "packs:share_revoke": POST_ONLY,
    # What a share link opens needs no login: the world's link is live, its PDF not yet
    # rendered (so the PDF sends the recipient back to the link's page).
    "shared:page": PUBLIC,
    "shared:pdf": codes(302, 302, 302, 302, 302, 302, 302),
    "shared:zip": PUBLIC,
    # The embedding in this world has no file attached.
    "learning:embedding_file": codes(302, 404, 404, 404, 404, 404, 404),
    # Emails that could not be sent: administrators only.
    "alerts:failed": codes(302, 404, 404, 404, 404, 404, 200),
    "alerts:retry": POST_ONLY,
    "alerts:retry_all": POST_ONLY,
}


def _patterns(patterns, namespace=None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace or namespace
            if ns == "admin":
                continue
            yield from _patterns(pattern.url_patterns, ns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}:{pattern.name}" if namespace else pattern.name


def all_url_names() -> list[str]:
    return sorted(set(_patterns(get_resolver().url_patterns)))


def test_every_url_pattern_has_an_entry():
    missing = [name for name in all_url_names() if name not in TABLE]
    assert missing == [], f"Add these URLs to the permission table: {missing}"
    stale = [name for name in TABLE if name not in all_url_names()]
    assert stale == [], f"These entries name no URL any more: {stale}"


@pytest.fixture
def world(
    quality_lead,
    manager,
    outsider,
    viewer,
    governance_member,
    administrator,
    oakfield,
    settings,
    monkeypatch,
):
    """One of everything, at Oakfield, visible to the plan's people."""
    settings.MFA_REQUIRED_ROLES = set()  # enforcement has its own tests
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    today = timezone.localdate()
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    measurement = measure(plan, by=quality_lead, on=today - datetime.timedelta(days=3))
    pdf = upload("notes.pdf", PDF_BYTES, "application/pdf")
    evidence = audits_services.add_evidence(
        plan=plan,
        by=quality_lead,
        upload=pdf,
        file_type=detect_type(pdf),
        fields={
            "kind": "re_audit",
            "title": "Audit sheet",
            "occurred_on": today,
            "description": "",
        },
    )
    batch = audits_services.start_import(
        plan=plan,
        by=quality_lead,
        kind="csv",
        upload=upload("results.csv", b"indicator,measured_on,numerator,denominator\n", "text/csv"),
    )
    group = governance.create_group(
        by=quality_lead, name="Safeguarding Governance Group", authority_level=3
    )
    chair = factories.UserFactory(username="chair", role="governance_member")
    governance.set_membership(group=group, user=chair, role=Membership.Role.CHAIR, by=quality_lead)
    membership = governance.set_membership(
        group=group, user=governance_member, role=Membership.Role.MEMBER, by=quality_lead
    )
    meeting = governance.schedule_meeting(
        group=group, held_on=today + datetime.timedelta(days=7), by=quality_lead
    )
    risk = governance.record_residual_risk(
        plan=plan, by=quality_lead, description="Agency staff", monitoring="Monthly spot check"
    )
    ready = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Ready plan")
    factories.make_ready(ready, by=quality_lead)  # the real rules of closure, all met
    report = closure.submit_for_closure(plan=ready, by=quality_lead, group=group)
    closed = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Closed plan")
    summary = write_summary(closed, by=quality_lead)
    close_plan(closed, by=quality_lead, when=timezone.now() - datetime.timedelta(days=100))
    learning.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
    embedding = learning.record_embedding(
        summary=summary, by=quality_lead, kind="induction", embedded_on=today, who="Training team"
    )
    from audits.tools.models import Answer, ToolImport
    from tests.audits.tool_helpers import conduct, safeguarding_tool

    tool = safeguarding_tool(quality_lead)
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}])
    in_progress = conduct(tool, location=oakfield, by=manager, answers=[{}], submit=False)
    tool_import = ToolImport.objects.create(
        original_name="tool.xlsx", status="invalid", errors=["x"], created_by=quality_lead
    )
    from learning.sweeps import schedule_due_reviews

    schedule_due_reviews(today)
    share = sharing.share_plan_pack(plan=plan, by=quality_lead, recipient="An Inspector")
    return {
        "share": share.share,
        "share_token": share.token,
        "plan": plan,
        "measurement": measurement,
        "evidence": evidence,
        "batch": batch,
        "group": group,
        "membership": membership,
        "meeting": meeting,
        "risk": risk,
        "report": report,
        "closed": closed,
        "summary": summary,
        "embedding": embedding,
        "ack": Acknowledgement.objects.get(manager=manager),
        "tool": tool,
        "audit": audit,
        "in_progress": in_progress,
        "no": Answer.objects.get(record__audit=audit, value="no"),
        "tool_import": tool_import,
        "review": LearningReview.objects.get(summary=summary, due_on__lte=today),
        "users": {
            "lead": quality_lead,
            "manager": manager,
            "outsider": outsider,
            "viewer": viewer,
            "member": governance_member,
            "admin": administrator,
        },
    }


def _kwargs(name: str, w: dict) -> dict:
    """Arguments for each URL, pointing at the world's objects."""
    plan_ref = {"reference": w["plan"].reference}
    by_name = {
        "password_reset_confirm": {"uidb64": "MQ", "token": "set-password"},
        "mfa_setup_confirm": {"token": "not-a-token"},
        "sign_in_unlock": {"token": "not-a-token"},
        "plans:edit_action": {**plan_ref, "action_id": w["plan"].actions.first().pk},
        "plans:verify_action": {**plan_ref, "action_id": w["plan"].actions.first().pk},
        "plans:transition": {**plan_ref, "name": "withdraw"},
        "audits:edit_measurement": {**plan_ref, "pk": w["measurement"].pk},
        "audits:recalculate_limits": {**plan_ref, "pk": w["plan"].indicators.first().pk},
        "audits:export": {**plan_ref, "kind": "csv"},
        "audits:import_template": {**plan_ref, "kind": "csv"},
        "audits:download_evidence": {"pk": w["evidence"].pk},
        "audits:import_detail": {"pk": w["batch"].pk},
        "audits:import_commit": {"pk": w["batch"].pk},
        "audits:import_retry": {"pk": w["batch"].pk},
        "governance:group": {"pk": w["group"].pk},
        "governance:member_add": {"pk": w["group"].pk},
        "governance:member_remove": {"pk": w["group"].pk, "membership_id": w["membership"].pk},
        "governance:meeting_create": {"pk": w["group"].pk},
        "governance:meeting": {"pk": w["meeting"].pk},
        "governance:agenda_add": {"pk": w["meeting"].pk},
        "governance:risk_remove": {**plan_ref, "risk_id": w["risk"].pk},
        "governance:report": {"pk": w["report"].pk},
        "governance:report_pdf": {"pk": w["report"].pk},
        "governance:report_pdf_status": {"pk": w["report"].pk},
        "governance:report_snapshot_pdf": {"pk": w["report"].pk},
        "governance:report_pdf_retry": {"pk": w["report"].pk},
        "governance:decide": {"pk": w["report"].pk},
        "learning:acknowledge": {"pk": w["ack"].pk},
        "packs:status": {"pk": 999999},
        "alerts:retry": {"pk": 999999},
        "packs:pdf": {"pk": 999999},
        "packs:retry": {"pk": 999999},
        "packs:share_revoke": {"pk": w["share"].pk},
        "shared:page": {"token": w["share_token"]},
        "shared:pdf": {"token": w["share_token"]},
        "shared:zip": {"token": w["share_token"]},
        "learning:review": {"pk": w["review"].pk},
        "learning:review_agenda": {"pk": w["review"].pk},
        "learning:detail": {"reference": w["closed"].reference},
        "learning:summary": {"reference": w["closed"].reference},
        "learning:share": {"reference": w["closed"].reference},
        "learning:add_embedding": {"reference": w["closed"].reference},
        "learning:edit_embedding": {"reference": w["closed"].reference, "pk": w["embedding"].pk},
        "learning:embedding_file": {"reference": w["closed"].reference, "pk": w["embedding"].pk},
        "audits:tool_detail": {"pk": w["tool"].pk},
        "audits:tool_export": {"pk": w["tool"].pk},
        "audits:tool_edit": {"pk": w["tool"].pk},
        "audits:compliance": {"pk": w["tool"].pk},
        "audits:compliance_export": {"pk": w["tool"].pk, "kind": "csv"},
        "audits:tool_import_detail": {"pk": w["tool_import"].pk},
        "audits:audit_detail": {"pk": w["audit"].pk},
        "audits:audit_record": {"pk": w["in_progress"].pk, "position": 1},
        "audits:audit_answer": {"pk": w["in_progress"].pk, "position": 1},
        "audits:audit_correct": {"pk": w["audit"].pk, "position": 1},
        "audits:audit_review": {"pk": w["in_progress"].pk},
        "audits:audit_submit": {"pk": w["in_progress"].pk},
        "audits:raise_action": {"pk": w["audit"].pk, "answer_id": w["no"].pk},
        "audits:audit_pdf": {"pk": w["audit"].pk},
        "audits:audit_pdf_request": {"pk": w["audit"].pk},
        "audits:audit_pdf_status": {"pk": w["audit"].pk},
    }
    if name in by_name:
        return by_name[name]
    try:
        reverse(name)
        return {}
    except Exception:  # noqa: BLE001 - the remaining URLs take only the plan reference
        return plan_ref


def _answer(client, url: str) -> int:
    return client.get(url).status_code


def test_every_url_answers_each_role_as_the_table_says(client, world):
    from django.test import Client

    urls = {name: reverse(name, kwargs=_kwargs(name, world)) for name in all_url_names()}
    observed: dict[str, dict[str, int]] = {name: {} for name in urls}
    for role in ROLES:
        role_client = Client()
        if role != "anon":
            role_client.force_login(world["users"][role])
        for name, url in urls.items():
            observed[name][role] = _answer(role_client, url)
    if os.environ.get("MATRIX_DISCOVER") == "1":
        for name in sorted(observed):
            print(f'    "{name}": codes({", ".join(str(observed[name][r]) for r in ROLES)}),')
    mismatches = [
        f"{name} as {role}: expected {TABLE[name][role]}, got {observed[name][role]} ({urls[name]})"
        for name in sorted(observed)
        if name in TABLE
        for role in ROLES
        if observed[name][role] != TABLE[name][role]
    ]
    assert mismatches == [], "\n".join(mismatches)


def test_the_admin_site_is_for_staff_only(client, world):
    for role in ["lead", "manager", "outsider", "viewer", "member"]:
        client.force_login(world["users"][role])
        response = client.get("/admin/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"], role
    client.force_login(world["users"]["admin"])
    assert client.get("/admin/").status_code == 200


# --- Signing: who may not sign a closure decision, even as chair or delegate ----------


@pytest.fixture
def signing_world(quality_lead, administrator, oakfield, settings):
    """A report awaiting decision whose group's delegate chairs are each conflicted or
    unverified in one way, plus a clean chair. Built through the services, with a
    meeting held today that all of them attended."""
    from plans import services as plan_services

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    people = {
        name: factories.UserFactory(username=name, role="governance_member")
        for name in ["clean", "owner", "action_owner", "logger", "no_two_step", "outsider_chair"]
    }
    data = factories.new_plan_data(owner=people["owner"], locations=[oakfield])
    data.actions.append(
        {
            "description": "Supervision audit",
            "owner": people["action_owner"],
            "due_date": timezone.localdate(),
            "status": "open",
            "completion_note": "",
        }
    )
    plan = plan_services.create_plan(by=quality_lead, data=data)
    plan = plan_services.activate_plan(plan=plan, by=quality_lead)
    factories.meet_criteria(plan, by=people["logger"])  # the results' logger
    factories.complete_actions(plan, by=quality_lead)
    factories.add_required_evidence(plan, by=quality_lead)
    factories.write_learning_summary(plan, by=quality_lead)
    factories.record_residual_risk(plan, by=quality_lead)
    group = governance.create_group(by=quality_lead, name="Quality Committee", authority_level=3)
    governance.set_membership(
        group=group, user=people["clean"], role=Membership.Role.CHAIR, by=quality_lead
    )
    for name in ["owner", "action_owner", "logger", "no_two_step"]:
        governance.set_membership(
            group=group, user=people[name], role=Membership.Role.DELEGATE_CHAIR, by=quality_lead
        )
    other = governance.create_group(by=quality_lead, name="Board", authority_level=3)
    governance.set_membership(
        group=other, user=people["outsider_chair"], role=Membership.Role.CHAIR, by=quality_lead
    )
    report = closure.submit_for_closure(plan=plan, by=quality_lead, group=group)
    meeting = governance.schedule_meeting(
        group=group,
        held_on=timezone.localdate(),
        by=quality_lead,
        attendees=[people[n] for n in ["clean", "owner", "action_owner", "logger", "no_two_step"]],
    )
    governance.put_on_agenda(meeting=meeting, report=report, by=quality_lead)
    return {"people": people, "report": report, "meeting": meeting, "plan": plan}


def _signed_in_with_two_step(user):
    """A real sign-in: password, then a code from the person's authenticator."""
    from django.test import Client

    client = Client()
    assert client.post(
        reverse("login"), {"username": user.username, "password": factories.PASSWORD}
    ).status_code == 302
    response = client.post(reverse("mfa_verify"), {"code": factories.signing_code(user)})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    return client


def _sign(client, w, user, otp_token=None):
    return client.post(
        reverse("governance:decide", kwargs={"pk": w["report"].pk}),
        {
            "outcome": "close",
            "meeting": w["meeting"].pk,
            "password": factories.PASSWORD,
            "otp_token": otp_token or factories.signing_code(user),
            "confirm": "on",
        },
    )


def _nothing_signed(w) -> bool:
    from governance.models import Decision
    from plans.models import Plan

    plan = Plan.objects.get(pk=w["plan"].pk)
    return not Decision.objects.exists() and plan.status == Plan.Status.CLOSURE_REVIEW


@pytest.mark.parametrize(
    "who, refusal",
    [
        ("owner", "You own this plan, so you cannot sign its decision."),
        ("action_owner", "You own actions on this plan, so you cannot sign its decision."),
        ("logger", "You logged results or evidence for this plan, so you cannot sign"),
    ],
)
def test_a_conflicted_delegate_chair_is_refused_with_the_rule_and_nothing_is_signed(
    signing_world, who, refusal
):
    w = signing_world
    user = w["people"][who]
    client = _signed_in_with_two_step(user)
    page = client.get(reverse("governance:decide", kwargs={"pk": w["report"].pk}))
    assert page.status_code == 200 and refusal in page.content.decode()  # said up front
    response = _sign(client, w, user)
    assert response.status_code == 400
    assert refusal in response.content.decode()
    assert "A delegate chair of the group can sign instead." in response.content.decode()
    assert _nothing_signed(w)


def test_a_chair_of_the_wrong_group_gets_404_and_nothing_is_signed(signing_world):
    w = signing_world
    user = w["people"]["outsider_chair"]
    client = _signed_in_with_two_step(user)
    assert client.get(reverse("governance:decide", kwargs={"pk": w["report"].pk})).status_code == (
        404
    )
    assert _sign(client, w, user).status_code == 404
    assert _nothing_signed(w)


def test_a_delegate_chair_without_two_step_cannot_sign(signing_world):
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    w = signing_world
    user = w["people"]["no_two_step"]
    client = Client()
    client.post(reverse("login"), {"username": user.username, "password": factories.PASSWORD})
    # Sent to set up two-step verification, for the form and for a POST alike.
    url = reverse("governance:decide", kwargs={"pk": w["report"].pk})
    assert client.get(url)["Location"].startswith(reverse("mfa_setup"))
    response = client.post(
        url,
        {
            "outcome": "close",
            "meeting": w["meeting"].pk,
            "password": factories.PASSWORD,
            "otp_token": "123456",
            "confirm": "on",
        },
    )
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa_setup"))
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert _nothing_signed(w)


def test_a_chair_appointed_mid_session_cannot_sign_in_that_session(signing_world, quality_lead):
    """Weakness 2: David signs in with his password only, as a plain member; made
    delegate chair, his open session used to answer the form and take a POST."""
    from django.test import Client

    w = signing_world
    david = factories.UserFactory(username="david", role="governance_member")
    governance.set_membership(
        group=w["report"].group, user=david, role=Membership.Role.MEMBER, by=quality_lead
    )
    governance.record_meeting(  # he attended: only the appointment stands in his way
        meeting=w["meeting"],
        by=quality_lead,
        attendees=[*w["meeting"].attendees.all(), david],
        minutes="",
    )
    client = Client()
    client.post(reverse("login"), {"username": "david", "password": factories.PASSWORD})
    url = reverse("governance:decide", kwargs={"pk": w["report"].pk})
    assert client.get(url).status_code == 404  # a plain member: not his to sign
    governance.set_membership(
        group=w["report"].group, user=david, role=Membership.Role.DELEGATE_CHAIR, by=quality_lead
    )
    # His session has ended: the form and the POST both send him to sign in again.
    for response in [client.get(url), _sign(client, w, david, otp_token="123456")]:
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert _nothing_signed(w)
    # Signing in again, he must set up two-step verification before anything else.
    client.post(reverse("login"), {"username": "david", "password": factories.PASSWORD})
    assert client.get(url)["Location"].startswith(reverse("mfa_setup"))
    assert _nothing_signed(w)


def test_the_clean_chair_signs_in_the_same_world(signing_world):
    """The control: the same report, meeting and form, signed by a chair with no
    conflict, is recorded; so each refusal above is the rule's doing."""
    from governance.models import Decision

    w = signing_world
    user = w["people"]["clean"]
    client = _signed_in_with_two_step(user)
    response = _sign(client, w, user)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Decision.objects.get().signed_by == user
