from django.http import HttpRequest


def navigation(request: HttpRequest) -> dict:
    """Which main section the page belongs to, for the navigation bar."""
    match = getattr(request, "resolver_match", None)
    return {"section": match.namespace if match else ""}
