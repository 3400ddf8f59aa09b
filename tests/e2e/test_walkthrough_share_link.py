"""Walkthrough: an inspector is given a plan's evidence pack by a share link.

The quality lead makes a link for a named inspector (7 days unless chosen otherwise);
the inspector, with no login, opens it, downloads the PDF (naming them and the expiry
on every page) and the evidence files; the quality lead sees each use; the lead
withdraws the link and the inspector is told it is no longer available, with nothing
of the plan shown. Set-up (people, the plan, its evidence) uses factories and
services; every step a person takes is in the browser."""

import datetime
import hashlib
import zipfile
from pathlib import Path

import pytest
import time_machine
from django.urls import reverse

from audits import services as audit_services
from core.files import detect_type
from qip_portal.packs import sharing
from qip_portal.packs.models import PackShare
from tests import factories
from tests.audits.factories import PDF_BYTES, upload
from tests.e2e.helpers import (
    as_user,
    check_accessible,
    fast_password_hashing,  # noqa: F401  (autouse fixture)
    moment,
    person,
    success_message,
)
from tests.e2e.test_walkthrough_1_closure import pdf_text

pytestmark = pytest.mark.django_db(transaction=True)

TODAY = moment(2026, 12, 7, hour=11)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def shoot_both(page, screenshots, name: str) -> None:
    screenshots(page, f"{name}-1280")
    page.set_viewport_size(PHONE)
    screenshots(page, f"{name}-390")
    page.set_viewport_size(DESKTOP)


def test_an_inspector_opens_the_shared_pack_until_the_link_is_withdrawn(
    page, browser, live_server, screenshots
):
    a11y: dict = {}
    with time_machine.travel(TODAY, tick=True):
        oakfield = factories.LocationFactory(name="Oakfield House")
        lead = person("priya", "quality_lead", first="Priya", last="Shah")
        plan = factories.live_plan(
            owner=lead, locations=[oakfield], title="Missed escalation of safeguarding concerns"
        )
        notes = upload("supervision-notes.pdf", PDF_BYTES, "application/pdf")
        audit_services.add_evidence(
            plan=plan,
            by=lead,
            upload=notes,
            file_type=detect_type(notes),
            fields={
                "kind": "supervision",
                "title": "Supervision notes",
                "occurred_on": TODAY.date(),
                "description": "",
            },
        )

        # 1. The quality lead makes a link for the inspector.
        as_user(page, "priya")
        page.goto(page.base + plan.get_absolute_url())
        page.get_by_role("link", name="Evidence pack and files").click()
        page.get_by_role("link", name="Share links").click()
        check_accessible(page, "share links (none yet)", a11y)
        assert page.get_by_label("Days the link lasts").input_value() == "7"
        page.get_by_label("Recipient's name").fill("Dr Ann Inspector")
        page.get_by_label("Organisation (optional)").fill("CQC")
        page.get_by_label("Days the link lasts").fill("31")
        page.get_by_role("button", name="Create the link").click()
        assert page.get_by_text("Ensure this value is less than or equal to 30").first.is_visible()
        page.get_by_label("Days the link lasts").fill("7")
        page.get_by_role("button", name="Create the link").click()
        success_message(page, "Share link created for Dr Ann Inspector (CQC).")
        link = page.get_by_label("Share link").input_value()
        assert "/share/" in link
        share = PackShare.objects.get()
        assert share.pack.is_ready  # rendered in the background (in-process here)
        page.reload()  # the page shows the pack's progress until the PDF is ready
        assert page.get_by_label("Share link").count() == 0  # shown once only
        shoot_both(page, screenshots, "share-01-links")
        check_accessible(page, "share links", a11y)

        # 2. The inspector, with no login, opens it.
        inspector = browser.new_context(viewport=DESKTOP, bypass_csp=True)
        visit = inspector.new_page()
        visit.set_default_timeout(15000)
        visit.goto(link)
        assert visit.get_by_role("heading", name="Inspection evidence pack").is_visible()
        assert visit.get_by_text("Dr Ann Inspector (CQC)").is_visible()
        shoot_both(visit, screenshots, "share-02-inspector")
        check_accessible(visit, "share link (inspector)", a11y)
        with visit.expect_download() as download:
            visit.get_by_role("link", name="Download the PDF").click()
        data = Path(download.value.path()).read_bytes()
        assert hashlib.sha256(data).hexdigest() == share.pack.pdf_sha256
        text = pdf_text(data)
        if text is not None:
            assert "For Dr Ann Inspector (CQC) · link expires 14 Dec 2026" in text
        with visit.expect_download() as download:
            visit.get_by_role("link", name="Download the files (ZIP)").click()
        names = zipfile.ZipFile(download.value.path()).namelist()
        assert "manifest.csv" in names and len(names) == 2

        # 3. The quality lead sees each use, then withdraws the link.
        page.reload()
        uses = page.get_by_role("table", name="Uses of this link (3)")
        assert uses.get_by_text("127.0.0.1").count() == 3
        check_accessible(page, "share links (used)", a11y)
        page.get_by_role("button", name="Withdraw the link for Dr Ann Inspector (CQC)").click()
        success_message(page, "The link for Dr Ann Inspector (CQC) no longer works.")
        assert page.get_by_text("Withdrawn", exact=True).is_visible()
        shoot_both(page, screenshots, "share-03-withdrawn")

        # 4. The inspector is told it is no longer available, and nothing more.
        visit.goto(link)
        assert visit.get_by_role("heading", name="This link is no longer available").is_visible()
        assert plan.reference not in visit.content() and "Ann" not in visit.content()
        shoot_both(visit, screenshots, "share-04-unavailable")
        check_accessible(visit, "share link (withdrawn)", a11y)
        inspector.close()

    # A link left to run out: after its 7 days it says it has expired.
    with time_machine.travel(TODAY, tick=True):
        later = sharing.share_plan_pack(plan=plan, by=lead, recipient="Commissioner")
    with time_machine.travel(TODAY + datetime.timedelta(days=7, minutes=1), tick=True):
        page.goto(page.base + reverse("shared:page", args=[later.token]))
        assert page.get_by_text("It has expired.").is_visible()
        assert plan.reference not in page.content()
        check_accessible(page, "share link (expired)", a11y)

    assert a11y == {}, a11y
