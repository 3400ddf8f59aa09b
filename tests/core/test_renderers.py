"""The form renderer writes drop-down lists in Python: byte for byte what Django's
templates write, and the register no longer renders a template per option."""

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.urls import reverse

from core.renderers import FormRenderer
from plans.forms import RegisterFilterForm
from plans.models import Location
from tests import factories

CHOICES = [
    ("", "Any"),
    ("a", "Plain"),
    ("<b>", 'Tags & "quotes" <script>'),
    ("Group & co", [("g1", "In a group"), ("g2", "Also <grouped>")]),
    (3, 3),
]


class Everything(forms.Form):
    single = forms.ChoiceField(choices=CHOICES, required=False)
    required = forms.ChoiceField(choices=CHOICES)
    multiple = forms.MultipleChoiceField(choices=CHOICES, required=False)
    yes_no = forms.NullBooleanField(required=False)
    styled = forms.ChoiceField(
        choices=CHOICES,
        required=False,
        widget=forms.Select(attrs={"class": "form-select", "disabled": True, "data-x": 'a"b'}),
    )


def both(make_form) -> list[tuple[str, str]]:
    """Each field of ``make_form(renderer=...)`` rendered by Django's renderer and ours."""
    django_form = make_form(renderer=DjangoTemplates())
    our_form = make_form(renderer=FormRenderer())
    return [(django_form[name].as_widget(), our_form[name].as_widget()) for name in our_form.fields]


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"single": "<b>", "required": "g2", "multiple": ["a", "g1", "3"], "yes_no": "true"},
        {"single": "not a choice", "multiple": ["<b>"], "yes_no": "false", "styled": "a"},
    ],
)
def test_selects_are_written_as_django_writes_them(data):
    for django_html, ours in both(lambda **kw: Everything(data, **kw)):
        assert ours == django_html
        assert "<script>" not in ours


def test_selected_and_escaped():
    html = Everything({"single": "<b>"}, renderer=FormRenderer())["single"].as_widget()
    assert '<option value="&lt;b&gt;" selected>Tags &amp; &quot;quotes&quot; &lt;script&gt;' in html
    assert '<optgroup label="Group &amp; co">' in html


@pytest.mark.django_db
def test_model_choices_and_the_register_filters_match_django(quality_lead, oakfield):
    factories.LocationFactory(name="O'Brien & Sons <Care>")
    data = {"location": str(oakfield.pk), "status": "live", "sort": "-risk_score"}
    pairs = both(lambda **kw: RegisterFilterForm(data, user=quality_lead, **kw))
    for django_html, ours in pairs:
        assert ours == django_html
    assert any("O&#x27;Brien &amp; Sons &lt;Care&gt;" in ours for _, ours in pairs)


def test_other_option_templates_still_use_the_templates():
    class Fancy(forms.Select):
        option_template_name = "django/forms/widgets/input_option.html"

    field = forms.ChoiceField(choices=[("a", "A")], widget=Fancy)
    html = field.widget.render("x", "a", renderer=FormRenderer())
    assert html == field.widget.render("x", "a", renderer=DjangoTemplates())
    assert "<option" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("locations", [1, 60])
def test_register_filters_render_no_template_per_location(client, quality_lead, locations):
    """Django's select renders a template per option: 60 locations would add 60."""
    Location.objects.bulk_create(Location(name=f"Home {i:03}") for i in range(locations))
    client.force_login(quality_lead)
    response = client.get(reverse("plans:register"))
    assert response.status_code == 200
    option_templates = [t for t in response.templates if t.name.endswith("select_option.html")]
    assert option_templates == []
    assert response.content.decode().count('<option value="') >= locations
