"""The Celery app. Tasks are thin: they load by id and call a service or a sweep."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qip_portal.settings")

app = Celery("qip_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
