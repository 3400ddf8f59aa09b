"""The tool editor through the browser's form: creating a tool, editing an unused one
(rewritten in place) and a used one (a new version; past and in-progress audits keep
theirs), keys kept so fed indicators keep their results, each refusal keeping what
was typed with nothing saved, the add/remove/move buttons, and access."""

import pytest
from django.urls import reverse

from audits.models import Measurement
from audits.tools import editing, services
from audits.tools.models import AuditTool, ToolQuestion, ToolSection, ToolVersion
from plans.models import Theme
from tests.audits.tool_helpers import conduct, safeguarding_tool

pytestmark = pytest.mark.django_db


def form_data(name, sections, **details):
    """The editor's POST: ``sections`` as [(key, title, [question dicts])]."""
    data = {"name": name, "op": "save", "sections": len(sections), **details}
    for i, (key, title, questions) in enumerate(sections):
        data.update({f"s{i}-key": key, f"s{i}-title": title, f"s{i}-questions": len(questions)})
        for j, q in enumerate(questions):
            for field, value in {"key": "", "kind": "yes_no", **q}.items():
                data[f"s{i}-q{j}-{field}"] = value
    return data


def tool_sections(tool):
    """The current version's sections as ``form_data`` takes them, keys included."""
    version = services.current_version(tool)
    return [
        (
            s.key,
            s.title,
            [
                {
                    "key": q.key,
                    "text": q.text,
                    "kind": q.kind,
                    "guidance": q.guidance,
                    "evidence_hint": q.evidence_hint,
                    "choices": "\n".join(q.choices),
                    "min_value": "" if q.min_value is None else str(q.min_value),
                    "max_value": "" if q.max_value is None else str(q.max_value),
                }
                for q in s.questions.all()
            ],
        )
        for s in version.sections.all()
    ]


def opened(tool):
    """What the editor's page carries of the version it was opened on."""
    return editing.fingerprint(services.current_version(tool))


def edit(client, tool, sections, *, name=None, **extra):
    data = form_data(name or tool.name, sections, **extra)
    data.setdefault("based_on", opened(tool))
    return client.post(reverse("audits:tool_edit", args=[tool.pk]), data)


HANDS = [
    (
        "",
        "Hand hygiene",
        [
            {
                "text": "Were hands washed before care?",
                "guidance": "Watch, do not ask.",
                "evidence_hint": "Observation sheet",
            },
            {"text": "Gel dispensers full", "kind": "number", "min_value": "0", "max_value": "10"},
        ],
    ),
    (
        "",
        "Equipment",
        [
            {"text": "Gloves used", "kind": "choice", "choices": "Always\nSometimes\nNever"},
            {"text": "Anything else?", "kind": "text"},
        ],
    ),
]


@pytest.fixture
def tool(quality_lead):
    return safeguarding_tool(quality_lead)


def test_a_quality_lead_creates_a_tool_in_the_browser(client, quality_lead):
    theme = Theme.objects.create(name="Infection control")
    client.force_login(quality_lead)
    page = client.get(reverse("audits:tool_new")).content.decode()
    assert "New audit tool" in page and 'name="s0-q0-text"' in page
    response = client.post(
        reverse("audits:tool_new"),
        form_data(
            "Infection control walk",
            HANDS,
            theme=theme.pk,
            description="Monthly walk round",
            suggest_plan_below="75.5",
        ),
    )
    tool = AuditTool.objects.get(name="Infection control walk")
    assert response["Location"] == reverse("audits:tool_detail", args=[tool.pk])
    assert tool.theme == theme and str(tool.suggest_plan_below) == "75.5"
    version = services.current_version(tool)
    rows = list(version.questions.values_list("key", "kind", "text"))
    assert rows == [
        ("S1.Q1", "yes_no", "Were hands washed before care?"),
        ("S1.Q2", "number", "Gel dispensers full"),
        ("S2.Q1", "choice", "Gloves used"),
        ("S2.Q2", "text", "Anything else?"),
    ]
    first = version.questions.get(key="S1.Q1")
    assert (first.guidance, first.evidence_hint) == ("Watch, do not ask.", "Observation sheet")
    assert version.questions.get(key="S2.Q1").choices == ["Always", "Sometimes", "Never"]
    number = version.questions.get(key="S1.Q2")
    assert (number.min_value, number.max_value) == (0, 10)
    assert tool.history.get().history_user == quality_lead
    assert first.history.get().history_change_reason == "Question written"
    detail = client.get(response["Location"]).content.decode()
    assert "Edit tool" in detail and reverse("audits:tool_edit", args=[tool.pk]) in detail


def test_editing_an_unused_tool_rewrites_its_version_and_keeps_keys(client, quality_lead, tool):
    client.force_login(quality_lead)
    page = client.get(reverse("audits:tool_edit", args=[tool.pk])).content.decode()
    assert "No audit has used version 1 yet" in page
    sections = tool_sections(tool)
    s1 = sections[0]
    # Reword S1.Q2, put it first, drop S1.Q1, add a question; drop section S3.
    s1[2][1]["text"] = "Was the local authority told the same day?"
    sections[0] = (s1[0], s1[1], [s1[2][1], {"text": "Was the person asked what they want?"}])
    del sections[2]
    response = edit(client, tool, sections, change_note="Same day")
    assert response.status_code == 302, response.content.decode()
    assert tool.versions.count() == 1
    version = services.current_version(tool)
    assert list(version.questions.filter(section__key="S1").values_list("key", "text")) == [
        ("S1.Q2", "Was the local authority told the same day?"),
        ("S1.Q3", "Was the person asked what they want?"),  # a key never used before
    ]
    assert not version.sections.filter(key="S3").exists()
    assert version.change_note == "Same day"


def test_editing_a_used_tool_makes_a_new_version_and_the_old_audit_keeps_its_questions(
    client, quality_lead, manager, oakfield, tool
):
    done = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}])
    in_progress = conduct(tool, location=oakfield, by=manager, answers=[{}], submit=False)
    old = list(done.version.questions.values_list("pk", "key", "text"))
    client.force_login(quality_lead)
    page = client.get(reverse("audits:tool_edit", args=[tool.pk])).content.decode()
    assert "has been used by 2 audits" in page
    sections = tool_sections(tool)
    sections[0][2][0]["text"] = "Was the concern escalated the same day?"
    sections[1][2].reverse()  # reordered: the keys go with the questions
    response = edit(client, tool, sections, change_note="Same day, not 24 hours")
    assert response.status_code == 302
    followed = client.get(reverse("audits:tool_detail", args=[tool.pk])).content.decode()
    assert "Same day, not 24 hours" in followed
    assert tool.versions.count() == 2
    new = services.current_version(tool)
    assert new.number == 2
    assert list(new.questions.filter(section__key="S2").values_list("key", flat=True)) == [
        "S2.Q3",
        "S2.Q2",
        "S2.Q1",
    ]
    assert new.questions.get(key="S1.Q1").text == "Was the concern escalated the same day?"
    moved = new.questions.get(key="S2.Q3")  # written as S2.Q1, then given its own key
    assert [h.history_change_reason for h in moved.history.order_by("history_id")] == [
        "Question written",
        "Key set by the tool editor (kept across versions)",
    ]
    assert all(h.history_user == quality_lead for h in moved.history.all())
    assert new.history.get().history_change_reason == "New version: the previous one has been used"
    done.refresh_from_db()
    in_progress.refresh_from_db()
    assert done.version.number == 1 and in_progress.version.number == 1
    assert list(done.version.questions.values_list("pk", "key", "text")) == old
    # The finished audit's page still shows the question it was answered with.
    client.force_login(manager)
    audit_page = client.get(reverse("audits:audit_detail", args=[done.pk])).content.decode()
    assert "within 24 hours" in audit_page and "the same day" not in audit_page
    # The audit in progress carries on with version 1 and submits.
    record = client.get(reverse("audits:audit_record", args=[in_progress.pk, 1])).content.decode()
    assert "within 24 hours" in record and "the same day" not in record
    services.submit_audit(audit=in_progress, by=manager)
    in_progress.refresh_from_db()
    assert in_progress.is_submitted and in_progress.version.number == 1
    # New audits take version 2.
    fresh = conduct(tool, location=oakfield, by=manager, answers=[{}], submit=False)
    assert fresh.version == new


def test_changing_only_the_details_of_a_used_tool_keeps_its_version(
    client, quality_lead, manager, oakfield, tool
):
    conduct(tool, location=oakfield, by=manager, answers=[{}])
    client.force_login(quality_lead)
    response = edit(
        client, tool, tool_sections(tool), name="Safeguarding records audit", description="New"
    )
    assert response.status_code == 302
    tool.refresh_from_db()
    assert tool.name == "Safeguarding records audit" and tool.description == "New"
    assert tool.versions.count() == 1
    assert tool.history.first().history_change_reason == "Tool details changed"


def test_an_indicator_fed_by_a_question_still_gets_results_after_the_tool_is_edited(
    client, plan, quality_lead, manager, oakfield, tool
):
    indicator = plan.indicators.first()
    services.feed_indicator(
        indicator=indicator, tool=tool, scope="question", key="S1.Q2", by=quality_lead
    )
    conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q2": "no"}, {}])
    client.force_login(quality_lead)
    sections = tool_sections(tool)
    # Take out S1.Q1 and put a new question first: S1.Q2 is now in first position,
    # where revise_tool alone would have called it S1.Q1.
    fed = sections[0][2][1]
    sections[0] = ("S1", "Escalation", [{"text": "Was the concern written down?"}, fed])
    assert edit(client, tool, sections).status_code == 302
    version = services.current_version(tool)
    assert version.number == 2
    assert version.questions.get(key="S1.Q2").text == fed["text"]
    assert version.questions.get(key="S1.Q3").text == "Was the concern written down?"
    conduct(
        tool,
        location=oakfield,
        by=manager,
        answers=[{"S1.Q2": "no"}, {"S1.Q2": "no"}, {"S1.Q3": "no"}, {}],
        on=plan.opened_on,
    )
    latest = Measurement.objects.filter(indicator=indicator).order_by("-pk").first()
    assert Measurement.objects.filter(indicator=indicator).count() == 2
    assert (latest.numerator, latest.denominator) == (2, 4)  # S1.Q2's answers, not S1.Q3's


def test_a_fed_question_cannot_be_removed_or_stop_being_yes_no(client, plan, quality_lead, tool):
    services.feed_indicator(
        indicator=plan.indicators.first(), tool=tool, scope="question", key="S1.Q2", by=quality_lead
    )
    client.force_login(quality_lead)
    sections = tool_sections(tool)
    sections[0][2].pop(1)
    page = edit(client, tool, sections).content.decode()
    assert "Question S1.Q2 feeds the indicator" in page and plan.reference in page
    sections = tool_sections(tool)
    sections[0][2][1]["kind"] = "text"
    assert "Question S1.Q2 feeds" in edit(client, tool, sections).content.decode()
    assert tool.versions.get().questions.get(key="S1.Q2").kind == "yes_no"
    services.feed_indicator(
        indicator=plan.indicators.first(), tool=tool, scope="section", key="S3", by=quality_lead
    )
    sections = tool_sections(tool)
    del sections[2]
    assert "Section S3 feeds the indicator" in edit(client, tool, sections).content.decode()
    assert tool.versions.get().sections.filter(key="S3").exists()


def _refused(client, url, data, message):
    before = (
        AuditTool.objects.count(),
        ToolVersion.objects.count(),
        ToolQuestion.objects.count(),
        ToolSection.objects.count(),
    )
    response = client.post(url, data)
    page = response.content.decode()
    assert response.status_code == 200
    assert message in page, page
    assert "Nothing was saved" in page
    after = (
        AuditTool.objects.count(),
        ToolVersion.objects.count(),
        ToolQuestion.objects.count(),
        ToolSection.objects.count(),
    )
    assert before == after
    return page


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(name="  "), "Give the tool a name."),
        (lambda d: d.update(name="safeguarding RECORDS"), "There is already a tool called"),
        (lambda d: d.update(suggest_plan_below="101"), "between 0 and 100"),
        (lambda d: d.update(suggest_plan_below="-1"), "between 0 and 100"),
        (lambda d: d.update({"s1-q0-text": "were HANDS washed  before care?"}), "already asked"),
        (lambda d: d.update({"s1-title": "hand hygiene"}), "Section 1 has the same title"),
        (lambda d: d.update({"s1-q0-choices": ""}), "at least two options"),
        (lambda d: d.update({"s1-q0-choices": "Yes\nyes"}), "Each option must be different"),
        (lambda d: d.update({"s0-q1-min_value": "11"}), "lowest answer allowed is above"),
        (lambda d: d.update({"s0-q1-max_value": "lots"}), "Give a number"),
        (lambda d: d.update({"s0-q0-text": ""}), "Write the question."),
        (lambda d: d.update({"s0-title": ""}), "Give the section a title."),
        (lambda d: d.update({"s1-questions": 0}), "This section has no questions"),
        (lambda d: d.update(sections=0), "at least one section"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_kept(
    client, quality_lead, tool, change, message
):
    client.force_login(quality_lead)
    data = form_data("Infection control walk", HANDS)
    change(data)
    page = _refused(client, reverse("audits:tool_new"), data, message)
    if data["name"].strip():
        assert f'value="{data["name"]}"' in page  # what was typed is kept
    if data.get("sections"):
        assert "Observation sheet" in page


def test_bad_input_on_an_edit_saves_nothing(client, quality_lead, manager, oakfield, tool):
    conduct(tool, location=oakfield, by=manager, answers=[{}])
    AuditTool.objects.create(name="Medicines", created_by=quality_lead)
    client.force_login(quality_lead)
    url = reverse("audits:tool_edit", args=[tool.pk])
    sections = tool_sections(tool)
    sections[0][2][0]["text"] = "Changed wording kept on the page"
    sections[1][2][0]["kind"] = "choice"  # with no options
    data = form_data("Medicines", sections, based_on=opened(tool))
    page = _refused(client, url, data, "There is already a tool called “Medicines”")
    assert "at least two options" in page and "Changed wording kept on the page" in page
    assert tool.versions.count() == 1


@pytest.mark.parametrize("used", [True, False])
def test_an_edit_of_questions_changed_since_the_page_opened_is_refused(
    client, quality_lead, manager, oakfield, tool, used
):
    """Two leads open the editor; the first saves. The second's save is refused, whether
    the first made version 2 or rewrote an unused version 1 in place."""
    if used:
        conduct(tool, location=oakfield, by=manager, answers=[{}])
    client.force_login(quality_lead)
    second_opened = opened(tool)
    sections = tool_sections(tool)
    sections[0][2][0]["text"] = "First editor's wording"
    assert edit(client, tool, sections).status_code == 302
    sections[0][2][0]["text"] = "Second editor's wording"
    url = reverse("audits:tool_edit", args=[tool.pk])
    data = form_data(tool.name, sections, based_on=second_opened)
    page = _refused(client, url, data, "Someone changed this tool&#x27;s questions")
    assert "Second editor&#x27;s wording" in page  # kept on the page
    assert f'name="based_on" value="{second_opened}"' in page  # still the version opened
    question = services.current_version(tool).questions.get(key="S1.Q1")
    assert question.text == "First editor's wording"


@pytest.mark.parametrize("key", ["S2.Q1", "S1.Q2", "S9.Q1", "x"])
def test_a_key_that_is_not_the_questions_own_is_refused(client, quality_lead, tool, key):
    """Another section's question, a key given twice, a key the tool never had."""
    client.force_login(quality_lead)
    sections = tool_sections(tool)
    sections[0][2][0]["key"] = key
    url = reverse("audits:tool_edit", args=[tool.pk])
    _refused(
        client, url, form_data(tool.name, sections, based_on=opened(tool)), "no longer matches"
    )


def test_the_buttons_add_remove_and_move_without_saving(client, quality_lead):
    client.force_login(quality_lead)
    url = reverse("audits:tool_new")
    data = form_data("Walk", HANDS)
    page = client.post(url, {**data, "op": "add-question-0"}).content.decode()
    new_text = 'id="s0-q2-text" name="s0-q2-text" rows="2" maxlength="500" autofocus'
    assert new_text in page  # the keyboard goes to the new question
    page = client.post(url, {**data, "op": "down-question-0-0"}).content.decode()
    assert page.index("Gel dispensers full") < page.index("Were hands washed before care?")
    page = client.post(url, {**data, "op": "up-section-1"}).content.decode()
    assert page.index("Gloves used") < page.index("Gel dispensers full")
    page = client.post(url, {**data, "op": "remove-section-0"}).content.decode()
    assert "Gel dispensers full" not in page and 'name="sections" value="1"' in page
    page = client.post(url, {**data, "op": "add-section", "name": ""}).content.decode()
    assert 'name="s2-title"' in page and "Nothing was saved" not in page  # not judged yet
    page = client.post(url, {**data, "op": "add-section", "suggest_plan_below": "55"})
    assert 'value="Walk"' in page.content.decode() and 'value="55"' in page.content.decode()
    page = client.post(url, {**data, "op": "remove-question-1-9"}).content.decode()
    assert 'name="s1-questions" value="2"' in page  # a stale button changes nothing
    assert not AuditTool.objects.exists()


def test_the_editor_stops_at_100_questions_and_sends_larger_tools_to_the_spreadsheet(
    client, quality_lead
):
    client.force_login(quality_lead)
    many = [{"text": f"Question {n}?"} for n in range(101)]
    page = _refused(
        client, reverse("audits:tool_new"), form_data("Big", [("", "A", many)]), "at most 100"
    )
    assert "Question 100?" in page
    big = services.create_tool(
        by=quality_lead,
        name="Big",
        sections=[services.SectionSpec("A", [services.QuestionSpec(q["text"]) for q in many])],
    )
    page = client.get(reverse("audits:tool_edit", args=[big.pk])).content.decode()
    assert "This tool has 101 questions" in page and "<form" not in page.split("<main")[-1]


@pytest.mark.parametrize("role", ["manager", "viewer", "outsider", "governance_member"])
def test_only_quality_leads_and_administrators_edit_tools(client, request, role, tool):
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse("audits:tool_new")).status_code == 404
    assert client.post(reverse("audits:tool_new"), form_data("X", HANDS)).status_code == 404
    url = reverse("audits:tool_edit", args=[tool.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, form_data("X", HANDS, based_on=1)).status_code == 404
    assert not AuditTool.objects.filter(name="X").exists()
    page = client.get(reverse("audits:tool_detail", args=[tool.pk])).content.decode()
    assert "Edit tool" not in page


def test_an_administrator_may_edit(administrator, tool):
    from tests.governance.conftest import TwoStepClient

    client = TwoStepClient()  # administrators sign in with two-step verification
    client.force_login(administrator)
    assert client.get(reverse("audits:tool_edit", args=[tool.pk])).status_code == 200
    assert edit(client, tool, tool_sections(tool), description="x").status_code == 302


def test_the_editor_needs_csrf(quality_lead, tool):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(quality_lead)
    assert client.post(reverse("audits:tool_new"), form_data("Y", HANDS)).status_code == 403
