from functools import partial

from django.http import HttpRequest

from governance.people import role_label


def navigation(request: HttpRequest) -> dict:
    """Which main section the page belongs to, for the navigation bar; and how the
    signed-in person's role is named in the header (read only if the page shows it)."""
    match = getattr(request, "resolver_match", None)
    user = getattr(request, "user", None)
    label = partial(role_label, user) if user is not None and user.is_authenticated else ""
    return {"section": match.namespace if match else "", "role_label": label}
