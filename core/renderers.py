"""The form renderer (``FORM_RENDERER``): Django's own, except that drop-down lists are
written in Python.

Django renders a ``<select>`` through one template include per ``<option>``: about
0.05 ms each, which is most of the register page when its filters list 200 locations
and every plan owner (BENCHMARKS.md). This renderer writes exactly the HTML that
Django's ``select.html`` and ``select_option.html`` would (tests compare the two on
every kind of select the portal uses), from the same widget context, so widgets,
attributes and escaping are Django's; any other template, or a select whose options
use another template, goes through the templates as usual.
"""

from __future__ import annotations

from django.forms.renderers import DjangoTemplates
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

SELECT = "django/forms/widgets/select.html"
OPTION = "django/forms/widgets/select_option.html"


def _attrs(attrs: dict) -> str:
    """As ``django/forms/widgets/attrs.html``: False left out, True as a bare name."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {conditional_escape(name)}")
        else:
            parts.append(f' {conditional_escape(name)}="{conditional_escape(str(value))}"')
    return "".join(parts)


def render_select(widget: dict) -> str:
    """``select.html`` for a widget context, with its options in ``select_option.html``
    (whose file ends in a newline, hence the blank line after each option)."""
    out = [f'<select name="{conditional_escape(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            out.append(f'\n  <optgroup label="{conditional_escape(localize(group_name))}">')
        for option in group_choices:
            out.append(
                f'\n  <option value="{conditional_escape(str(option["value"]))}"'
                f"{_attrs(option['attrs'])}>{conditional_escape(localize(option['label']))}</option>\n"
            )
        if group_name:
            out.append("\n  </optgroup>")
    out.append("\n</select>")
    # Every value above went through conditional_escape.
    return mark_safe("".join(out))  # noqa: S308  # nosec B308 B703


class FormRenderer(DjangoTemplates):
    def render(self, template_name, context, request=None):
        widget = context.get("widget") if template_name == SELECT else None
        if widget is not None and all(
            option.get("template_name") == OPTION
            for _name, choices, _index in widget["optgroups"]
            for option in choices
        ):
            return render_select(widget)
        return super().render(template_name, context, request)
