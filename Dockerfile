# The one image behind every service in docker-compose.yml (web, worker, beat, migrate,
# prepare-storage).
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY qip_portal/ qip_portal/
COPY core/ core/
COPY plans/ plans/
COPY audits/ audits/
COPY governance/ governance/
COPY learning/ learning/
RUN pip install --no-cache-dir .
COPY . .
# A throwaway key: collectstatic needs settings to load, and nothing is signed here.
RUN DEBUG=false SECRET_KEY=build-only-collectstatic-key-not-used-at-run-time-0123456789 \
    python manage.py collectstatic --noinput \
    && useradd --system --uid 1000 qip && mkdir -p /data/media /data/beat && chown qip /data/media /data/beat
USER qip
EXPOSE 8000
