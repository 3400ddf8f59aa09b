import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout

from core import security

SESSION_STARTED = "qip_session_started"
SESSION_SEEN = "qip_session_seen"


class SessionLifetimeMiddleware:
    """Ends a session SESSION_ABSOLUTE_SECONDS after sign-in, however active it was, and
    keeps an active one alive: the idle timeout is Django's (SESSION_COOKIE_AGE from the
    last save), and this saves a signed-in session once SESSION_REFRESH_SECONDS have
    passed since it was last saved, instead of on every request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            started = request.session.get(SESSION_STARTED)
            if started is None:
                request.session[SESSION_STARTED] = time.time()
            elif time.time() - started > settings.SESSION_ABSOLUTE_SECONDS:
                user = request.user
                logout(request)
                security.record("session_expired", request=request, user=user)
                messages.info(request, "Your session has ended for security. Please sign in again.")
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and request.user.is_authenticated:
            now = time.time()
            # Well inside the idle limit, however short it is configured.
            every = min(settings.SESSION_REFRESH_SECONDS, settings.SESSION_COOKIE_AGE / 4)
            stale = now - session.get(SESSION_SEEN, 0) >= every
            if session.modified or stale:
                # Saved by SessionMiddleware (the idle clock restarts), noting when.
                session[SESSION_SEEN] = now
        return response
