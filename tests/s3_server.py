"""A local S3-compatible server for the object-storage tests: ``moto_server`` (moto in
server mode, from the dev extras) on a free port of 127.0.0.1, started once per test
process when a test first needs it and killed when the process ends. Nothing leaves the
machine.

``TEST_STORAGE_SERVER`` (``http://KEY:SECRET@HOST:PORT``) points the tests at another
server instead, e.g. a MinIO. Each test gets a bucket of its own (``Bucket``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

from tests.core.worker import free_port, wait

# moto accepts any credentials; these only have to be present.
MOTO_KEY = "qip-test-key"
MOTO_SECRET = "qip-test-secret"  # noqa: S105 - a local fake server's


class S3Server:
    def __init__(self, endpoint: str, key: str, secret: str, process=None):
        self.endpoint = endpoint  # http://127.0.0.1:PORT
        self.key = key
        self.secret = secret
        self.process = process

    @classmethod
    def from_environment(cls) -> S3Server | None:
        raw = os.environ.get("TEST_STORAGE_SERVER", "").strip()
        if not raw:
            return None
        parts = urlsplit(raw)
        return cls(
            f"{parts.scheme}://{parts.hostname}:{parts.port}",
            parts.username or "",
            parts.password or "",
        )

    @classmethod
    def start_moto(cls, log_dir: Path) -> S3Server | None:
        """A ``moto_server`` of this process's own, or None if moto is not installed."""
        binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        if binary is None:
            return None
        port = free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        with (log_dir / f"moto-{port}.log").open("ab") as log:
            process = subprocess.Popen(
                [binary, "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = cls(f"http://127.0.0.1:{port}", MOTO_KEY, MOTO_SECRET, process)
        try:
            wait(server.answers, f"moto_server on port {port}", timeout=60, every=0.2)
        except AssertionError:
            server.stop()
            raise
        return server

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"moto_server exited ({self.process.returncode})")
        try:
            self.client().list_buckets()
        except Exception:
            return False
        return True

    def storage_url(self, bucket: str, prefix: str = "") -> str:
        """The STORAGE_URL of ``bucket`` on this server (plain http: it is local)."""
        parts = urlsplit(self.endpoint)
        scheme = "s3+http" if parts.scheme == "http" else "s3"
        path = f"/{bucket}" + (f"/{prefix}" if prefix else "")
        return (
            f"{scheme}://{quote(self.key, safe='')}:{quote(self.secret, safe='')}"
            f"@{parts.netloc}{path}"
        )

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)


class Bucket:
    """A bucket of one test's own on ``server``: ``url`` is its STORAGE_URL. Created
    empty on entry (unless ``create=False``); emptied and removed on exit."""

    def __init__(self, server: S3Server, *, create: bool = True):
        self.server = server
        self.name = f"qip-test-{uuid.uuid4().hex[:16]}"
        self.url = server.storage_url(self.name)
        self.create = create

    def __enter__(self) -> Bucket:
        if self.create:
            self.server.client().create_bucket(Bucket=self.name)
        return self

    def stored(self) -> list[str]:
        client = self.server.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.server.client().get_object(Bucket=self.name, Key=key)["Body"].read()

    def __exit__(self, *exc) -> None:
        client = self.server.client()
        with contextlib.suppress(client.exceptions.NoSuchBucket):
            for key in self.stored():
                client.delete_object(Bucket=self.name, Key=key)
            client.delete_bucket(Bucket=self.name)
