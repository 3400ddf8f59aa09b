"""``{% error_summary form other_form %}``: the list of problems at the top of a form
that was not saved (``core.forms.error_summary``)."""

from django import template

from core.forms import error_summary as collect

register = template.Library()


@register.inclusion_tag("_error_summary.html")
def error_summary(*forms) -> dict:
    """Forms, or lists of forms (``forms`` of a page that renders several)."""
    flat = []
    for item in forms:
        flat.extend(item if isinstance(item, list | tuple) else [item])
    return {"errors": collect(*flat)}
