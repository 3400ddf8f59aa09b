"""Private files in an S3-compatible bucket, for several web nodes and workers.

With ``STORAGE_URL`` set (format: ``qip_portal.env.read_storage_url``), evidence files,
spreadsheets being imported, evidence-pack PDFs and closure-report PDFs are kept in one
bucket that every web node and worker reads and writes (``STORAGES["default"]`` is this
class); unset, they stay under ``MEDIA_ROOT`` (``core.files.PrivateStorage``), as
``make run`` needs. Downloads: ``core.storage``.
"""

from __future__ import annotations

from typing import IO

from botocore.exceptions import ClientError
from storages.backends.s3 import S3Storage
from storages.utils import clean_name


class PrivateS3Storage(S3Storage):
    """A bucket with no URLs given out. A name already taken gets a new one (never an
    overwrite), as on the filesystem. Objects are written with no ACL, so they take the
    bucket's own policy: keep the bucket private (the default on S3 and MinIO)."""

    def get_default_settings(self):
        return {
            **super().get_default_settings(),
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
        }

    def url(self, name, *args, **kwargs):
        raise NotImplementedError("Private files have no URL; stream them through a view.")

    def open_stream(self, name: str) -> tuple[IO[bytes], int]:
        """The object's body as it arrives (nothing is written to disk first), and its
        size. A missing object raises ``FileNotFoundError``, as on the filesystem."""
        key = self._normalize_name(clean_name(name))
        try:
            answer = self.bucket.meta.client.get_object(Bucket=self.bucket_name, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise FileNotFoundError(f"{name} is not in the bucket") from error
            raise
        return answer["Body"], int(answer["ContentLength"])

    def create_bucket_if_missing(self) -> bool:
        """Make the bucket unless it exists; True if it was made."""
        client = self.bucket.meta.client
        try:
            client.head_bucket(Bucket=self.bucket_name)
            return False
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
                raise
        extra = {}
        if self.region_name and self.region_name != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": self.region_name}
        client.create_bucket(Bucket=self.bucket_name, **extra)
        return True
