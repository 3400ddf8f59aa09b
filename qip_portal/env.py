"""Strict readers for environment values: a malformed value fails at start, loudly."""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def read_bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def read_int(name: str, *, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    return value


def read_list(name: str, *, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise ImproperlyConfigured(
            f"{name} is a comma-separated list with an empty entry: {raw!r}."
        )
    return items


# Object storage for private files (STORAGE_URL). The filesystem is used when unset.
_STORAGE_SCHEMES = {"s3": "https", "s3+https": "https", "s3+http": "http"}
_ADDRESSING = {"path", "virtual"}


def read_storage_url(name: str = "STORAGE_URL") -> dict | None:
    """The S3 storage options ``name`` describes, or None when it is unset (files then
    stay on the filesystem, under MEDIA_ROOT). The format:

        s3://ACCESS_KEY:SECRET_KEY@HOST[:PORT]/BUCKET[/PREFIX][?region=R&addressing=A]

    ``s3://`` (or ``s3+https://``) talks https to HOST; ``s3+http://`` plain http, for a
    server on a private network only (MinIO beside the portal, a test server). The keys
    are percent-encoded (a ``/`` in a secret is ``%2F``); without ``KEY:SECRET@`` boto3
    finds credentials itself (AWS_ACCESS_KEY_ID, an instance role). ``addressing`` is
    ``path`` (the default: MinIO and most S3-compatible servers) or ``virtual``."""
    raw = os.environ.get(name, "").strip()
    return parse_storage_url(raw, name=name) if raw else None


def parse_storage_url(raw: str, *, name: str = "STORAGE_URL") -> dict:
    """The options of ``core.s3.PrivateS3Storage`` that ``raw`` describes (format:
    ``read_storage_url``); ``ImproperlyConfigured`` says what is wrong with it."""
    from urllib.parse import parse_qs, unquote, urlsplit

    def refuse(why: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(
            f"{name} {why}; expected s3://KEY:SECRET@HOST[:PORT]/BUCKET[/PREFIX]"
            "[?region=REGION&addressing=path|virtual] (or s3+http:// for plain http)."
        )

    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise refuse(f"is not a valid URL ({exc})") from None
    protocol = _STORAGE_SCHEMES.get(parts.scheme.lower())
    if protocol is None:
        raise refuse(f"has the scheme {parts.scheme!r}")
    if not parts.hostname:
        raise refuse("names no host")
    bucket, _, prefix = parts.path.strip("/").partition("/")
    if not bucket:
        raise refuse("names no bucket")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"region", "addressing"}
    if unknown:
        raise refuse(f"has unknown options {sorted(unknown)}")
    addressing = query.get("addressing", "path")
    if addressing not in _ADDRESSING:
        raise refuse(f"has addressing={addressing!r}")
    if (parts.username is None) != (parts.password is None):
        raise refuse("gives a key without its secret, or a secret without its key")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    options = {
        "endpoint_url": f"{protocol}://{host}" + (f":{port}" if port else ""),
        "bucket_name": bucket,
        "location": prefix.strip("/"),
        "region_name": query.get("region") or None,
        "addressing_style": addressing,
    }
    if parts.username is not None:
        options["access_key"] = unquote(parts.username)
        options["secret_key"] = unquote(parts.password)
    return options
