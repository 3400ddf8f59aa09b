import datetime

import pytest
from django.utils import timezone

from plans.models import Plan
from tests import factories
from tests.e2e.conftest import axe_violations, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_quality_lead_opens_and_activates_a_plan_in_the_browser(
    page, quality_lead, oakfield, screenshots
):
    factories.ThemeFactory(name="Safeguarding")
    failed = []  # e.g. a favicon the browser asks for and does not get
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    sign_in(page, "lead")
    page.get_by_role("link", name="Plans", exact=True).click()
    page.get_by_role("link", name="Open a plan").click()
    today = timezone.localdate()
    page.get_by_label("Title").fill("Missed escalation of safeguarding concerns")
    page.get_by_label("Summary").fill("Three alerts about late escalation.")
    page.get_by_label("Theme").select_option(label="Safeguarding")
    page.get_by_label("Oakfield House").check()
    page.get_by_label("Likelihood").select_option("4")
    page.get_by_label("Impact").select_option("4")
    # Day/month/year, typed as a person in the UK would, whatever the browser's locale.
    target = today + datetime.timedelta(days=120)
    page.get_by_label("Target date").fill(target.strftime("%d/%m/%Y"))
    page.locator("#id_triggers-0-kind").select_option("safeguarding_alert")
    page.locator("#id_triggers-0-reference").fill("SG-77")
    page.locator("#id_triggers-0-occurred_on").fill(today.strftime("%d/%m/%Y"))
    page.locator("#id_triggers-0-description").fill("Concern escalated after three days")
    page.get_by_label("What success looks like in practice").fill(
        "Every concern escalated within 24 hours."
    )
    page.locator("#id_indicators-0-name").fill("Escalated within 24 hours")
    page.locator("#id_indicators-0-measure_type").select_option("proportion")
    page.locator("#id_indicators-0-direction").select_option("higher")
    page.locator("#id_indicators-0-target").fill("150")  # a mistake first
    page.get_by_role("button", name="Open plan as draft").click()
    # The problems are listed at the top, which takes the focus; each links to its field.
    summary = page.locator("#error-summary")
    assert summary.is_visible()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    link = summary.get_by_role(
        "link",
        name="Indicator 1, target: A proportion's target is a percentage between 0 and 100.",
    )
    link.click()
    assert page.evaluate("document.activeElement.id") == "id_indicators-0-target"
    assert page.get_by_label("Title").input_value() == "Missed escalation of safeguarding concerns"
    assert page.get_by_label("Target date").input_value() == target.strftime("%d/%m/%Y")
    assert axe_violations(page) == []
    screenshots(page, "create-with-error")
    page.locator("#id_indicators-0-target").fill("95")
    page.get_by_role("button", name="Open plan as draft").click()
    assert page.get_by_text("opened as a draft").is_visible()
    page.get_by_role("link", name="Activate").click()
    page.get_by_role("button", name="Activate").click()
    assert page.get_by_text(f"{Plan.objects.get().reference}: now live").is_visible()
    screenshots(page, "plan-live")
    plan = Plan.objects.get()
    assert plan.status == Plan.Status.LIVE and plan.criteria.is_locked
    assert plan.target_date == target
    assert failed == []


def test_main_pages_have_no_serious_accessibility_violations(page, quality_lead, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    page.goto(page.base + "/accounts/login/")
    assert axe_violations(page) == []
    sign_in(page, "lead")
    for path in [
        "/",
        "/plans/",
        plan.get_absolute_url(),
        "/plans/new/",
        "/accounts/security/",
        f"/plans/{plan.reference}/withdraw/",
    ]:
        page.goto(page.base + path)
        assert axe_violations(page) == [], path
