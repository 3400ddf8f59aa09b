import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout

from core import security

SESSION_STARTED = "qip_session_started"


class SessionLifetimeMiddleware:
    """Ends a session SESSION_ABSOLUTE_SECONDS after sign-in, however active it was.
    (The idle timeout is Django's own: SESSION_COOKIE_AGE with SESSION_SAVE_EVERY_REQUEST.)"""

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
        return self.get_response(request)
