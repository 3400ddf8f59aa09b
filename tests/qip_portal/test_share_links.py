"""Share links: a plan's evidence pack for an inspector with no login. Who may make and
withdraw them, what a link opens (the recipient's PDF and the evidence ZIP, nothing
else), how long it lasts, what an expired or withdrawn link says, the access log, the
token's storage and the rate limit."""

from __future__ import annotations

import datetime
import hashlib
import io
import re
import zipfile

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from qip_portal.packs import sharing
from qip_portal.packs.models import EvidencePack, PackShare, PackShareAccess
from tests.qip_portal.test_evidence_pack import add_evidence, pdf_text


@pytest.fixture(autouse=True)
def _fast(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MFA_REQUIRED_ROLES = set()
    settings.MEDIA_ROOT = tmp_path / "media"


def create_link(client, plan, *, recipient="Dr Ann Inspector", organisation="CQC", days=None):
    data = {
        "recipient": recipient,
        "organisation": organisation,
        "days": 7 if days is None else days,
    }
    return client.post(reverse("packs:shares", args=[plan.reference]), data)


@pytest.fixture
def shared(client, plan, quality_lead, django_capture_on_commit_callbacks):
    """A link made through the page by the quality lead; its pack rendered; its token."""
    add_evidence(plan, quality_lead, title="Supervision notes")
    client.force_login(quality_lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = create_link(client, plan)
    assert response.status_code == 302
    page = client.get(response["Location"])
    url = re.search(rb'id="new-link"[^>]*value="([^"]+)"', page.content).group(1).decode()
    token = url.rstrip("/").rsplit("/", 1)[-1]
    share = PackShare.objects.get()
    return share, token, url


def test_a_quality_lead_makes_a_link_that_is_shown_once_and_stored_hashed(client, plan, shared):
    share, token, url = shared
    assert url.startswith("http://testserver/share/")
    assert len(token) == sharing.TOKEN_CHARS and len(token) >= 55
    secret = token[PackShare.SELECTOR_CHARS :]
    # The database holds the selector and the secret's hash, never the token itself.
    assert share.selector == token[: PackShare.SELECTOR_CHARS]
    assert share.verifier_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(str(v) for v in PackShare.objects.values().get().values())
    stored += " ".join(str(v) for row in PackShare.history.values() for v in row.values())
    assert secret not in stored
    # Seven days unless chosen otherwise, with history of who made it.
    assert share.expires_at - share.created_at == datetime.timedelta(days=7)
    assert share.history.get().history_user == share.created_by
    # Shown once: the next view of the page does not show it again.
    again = client.get(reverse("packs:shares", args=[plan.reference]))
    assert token.encode() not in again.content
    assert b"Dr Ann Inspector (CQC)" in again.content


def test_the_recipient_gets_the_page_the_pdf_and_the_zip_and_each_is_logged(plan, shared, tmp_path):
    share, token, url = shared
    inspector = Client(REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Inspector browser")
    page = inspector.get(url)
    assert page.status_code == 200
    assert page["X-Robots-Tag"] == "noindex, nofollow"
    # The page opens the PDF and the ZIP and nothing else of the portal.
    links = {
        u for u in re.findall(rb'href="(/[^"]*)"', page.content) if not u.startswith(b"/static/")
    }
    assert links - {b"/"} == {
        reverse("shared:pdf", args=[token]).encode(),
        reverse("shared:zip", args=[token]).encode(),
    }
    pdf = inspector.get(reverse("shared:pdf", args=[token]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    data = b"".join(pdf.streaming_content)
    assert hashlib.sha256(data).hexdigest() == share.pack.pdf_sha256
    text = pdf_text(data, tmp_path)
    if text is not None:
        flat = " ".join(text.split())
        expires = timezone.localtime(share.expires_at).strftime("%-d %b %Y")
        # The footer of every page names the recipient and the expiry.
        footer = f"For Dr Ann Inspector (CQC) · link expires {expires}"
        assert flat.count(footer) == share.pack.page_count
    archive = inspector.get(reverse("shared:zip", args=[token]))
    assert archive.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))).namelist()
    assert "manifest.csv" in names and any(n.startswith("evidence/") for n in names)
    log = list(share.accesses.order_by("at", "pk"))
    assert [(a.what, a.outcome) for a in log] == [
        ("page", "served"),
        ("pdf", "served"),
        ("zip", "served"),
    ]
    assert {a.address for a in log} == {"203.0.113.9"}
    assert log[0].user_agent == "Inspector browser"


def test_the_quality_lead_sees_every_access(client, plan, shared):
    share, token, url = shared
    Client(REMOTE_ADDR="198.51.100.7").get(url)
    page = client.get(reverse("packs:shares", args=[plan.reference]))
    assert b"198.51.100.7" in page.content
    assert b"Uses of this link (1)" in page.content


def test_the_shared_copy_is_not_offered_as_the_plans_own_pack(client, plan, shared):
    page = client.get(reverse("packs:plan", args=[plan.reference]))
    assert b"Prepare the evidence pack" in page.content  # no pack of the plan's own yet
    assert b"(1 active)" in page.content


def test_a_withdrawn_link_says_so_and_names_nothing_of_the_plan(client, plan, shared):
    share, token, url = shared
    response = client.post(reverse("packs:share_revoke", args=[share.pk]))
    assert response.status_code == 302
    share.refresh_from_db()
    assert share.is_revoked and share.revoked_by.username == "lead"
    assert [h.history_change_reason for h in share.history.order_by("history_id")] == [
        "Shared with Dr Ann Inspector (CQC)",
        "Share link withdrawn",
    ]
    inspector = Client()
    for name in ("shared:page", "shared:pdf", "shared:zip"):
        answer = inspector.get(reverse(name, args=[token]))
        assert answer.status_code == 410, name
        assert b"withdrawn" in answer.content
        for detail in (plan.reference, plan.title, "Inspector", "Oakfield"):
            assert detail.encode() not in answer.content, detail
    assert set(share.accesses.values_list("outcome", flat=True)) == {"revoked"}
    # Withdrawing twice changes nothing.
    assert sharing.revoke_share(share=share, by=share.created_by) is False


def test_an_expired_link_says_so_and_names_nothing_of_the_plan(plan, shared):
    share, token, url = shared
    with time_machine.travel(share.expires_at + datetime.timedelta(seconds=1), tick=False):
        answer = Client().get(url)
    assert answer.status_code == 410
    assert b"expired" in answer.content
    assert plan.reference.encode() not in answer.content
    assert share.accesses.get().outcome == PackShareAccess.Outcome.EXPIRED
    with time_machine.travel(share.expires_at - datetime.timedelta(seconds=5), tick=False):
        assert Client().get(url).status_code == 200


def test_an_unknown_or_altered_token_is_not_found(plan, shared):
    share, token, url = shared
    inspector = Client()
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (altered, "x" * len(token), token[:-1], token + "A"):
        assert inspector.get(reverse("shared:page", args=[bad])).status_code == 404
    assert share.accesses.count() == 0


def test_links_last_from_one_to_thirty_days(client, plan, quality_lead):
    client.force_login(quality_lead)
    assert create_link(client, plan, days=31).status_code == 400
    assert create_link(client, plan, days=0).status_code == 400
    assert create_link(client, plan, recipient="  ").status_code == 400
    assert not PackShare.objects.exists() and not EvidencePack.objects.exists()
    assert create_link(client, plan, days=30).status_code == 302
    share = PackShare.objects.get()
    assert share.expires_at - share.created_at == datetime.timedelta(days=30)
    with pytest.raises(sharing.ShareRefused):
        sharing.share_plan_pack(plan=plan, by=quality_lead, recipient="A", days=31)


def test_requests_with_links_are_rate_limited_per_address(plan, shared, settings):
    share, token, url = shared
    settings.SHARE_LINK_REQUESTS_PER_MINUTE = 3
    first = Client(REMOTE_ADDR="192.0.2.1")
    answers = [first.get(url).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    # Guessing counts too, and another address has its own allowance.
    assert first.get(reverse("shared:page", args=["x" * 55])).status_code == 429
    assert Client(REMOTE_ADDR="192.0.2.2").get(url).status_code == 200


def test_only_quality_leads_and_administrators_of_the_plan_make_or_withdraw_links(
    client, plan, shared, manager, viewer, outsider, governance_member, administrator
):
    share, token, url = shared
    page = reverse("packs:shares", args=[plan.reference])
    revoke = reverse("packs:share_revoke", args=[share.pk])
    for user in (manager, viewer, outsider, governance_member):
        other = Client()
        other.force_login(user)
        assert other.get(page).status_code == 404
        assert create_link(other, plan).status_code == 404
        assert other.post(revoke).status_code == 404
    assert PackShare.objects.count() == 1 and not PackShare.objects.get().is_revoked
    admin = Client()
    admin.force_login(administrator)
    assert admin.get(page).status_code == 200


def test_making_and_withdrawing_need_a_csrf_token(plan, shared, quality_lead):
    share, token, url = shared
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(quality_lead)
    assert create_link(strict, plan).status_code == 403
    assert strict.post(reverse("packs:share_revoke", args=[share.pk])).status_code == 403
    assert strict.get(reverse("packs:share_revoke", args=[share.pk])).status_code == 405


def test_the_recipient_is_told_when_the_pdf_is_not_ready(client, plan, quality_lead):
    """Without running the render, the link works and says the PDF is on its way."""
    client.force_login(quality_lead)
    new = sharing.share_plan_pack(plan=plan, by=quality_lead, recipient="Ms Commissioner")
    inspector = Client()
    page = inspector.get(reverse("shared:page", args=[new.token]))
    assert b"still being prepared" in page.content
    assert inspector.get(reverse("shared:pdf", args=[new.token])).status_code == 302
    assert new.share.accesses.filter(outcome="not_ready").count() == 1


@pytest.mark.parametrize("count", [1, 20])
def test_the_share_page_costs_the_same_queries_for_1_and_20_links(
    client, plan, quality_lead, count, django_assert_max_num_queries, settings
):
    settings.PDF_RENDERS_PER_USER = 50
    for number in range(count):
        new = sharing.share_plan_pack(plan=plan, by=quality_lead, recipient=f"Inspector {number}")
        sharing.record_access(
            new.share, Client().get("/").wsgi_request, what="page", outcome="served"
        )
    client.force_login(quality_lead)
    with django_assert_max_num_queries(16):
        assert client.get(reverse("packs:shares", args=[plan.reference])).status_code == 200


def test_a_recipients_copy_never_names_the_other_recipients(
    client, plan, shared, django_capture_on_commit_callbacks
):
    """Each copy names its own link: a commissioner's copy does not tell them an
    inspector was sent the pack too (nor the reverse)."""
    from qip_portal.packs.evidence_pack import pack_html

    with django_capture_on_commit_callbacks(execute=True):
        response = create_link(client, plan, recipient="Mr Cai Commissioner", organisation="ICB")
    assert response.status_code == 302
    first, second = PackShare.objects.order_by("pk")
    first_copy, second_copy = pack_html(first.pack), pack_html(second.pack)
    assert "Dr Ann Inspector" in first_copy and "Mr Cai Commissioner" not in first_copy
    assert "Mr Cai Commissioner" in second_copy and "Dr Ann Inspector" not in second_copy
