import uuid

from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError

from core.files import get_private_storage
from core.s3 import PrivateS3Storage


class Command(BaseCommand):
    help = (
        "Make the private file storage ready: the bucket STORAGE_URL names is created if "
        "missing, then a file is written, read back and deleted to prove the portal's "
        "credentials can. Without STORAGE_URL, the same check on MEDIA_ROOT. Safe to repeat."
    )

    def handle(self, *args, **options):
        storage = get_private_storage()
        if isinstance(storage, PrivateS3Storage):
            where = f"bucket {storage.bucket_name} at {storage.endpoint_url}"
            try:
                made = storage.create_bucket_if_missing()
            except Exception as exc:
                raise CommandError(f"Could not reach or create the {where}: {exc}") from exc
            self.stdout.write(f"Created the {where}." if made else f"The {where} exists.")
        else:
            where = f"folder {storage.location}"
        probe = f"prepare-storage/{uuid.uuid4().hex}.txt"
        try:
            name = storage.save(probe, ContentFile(b"probe"))
            with storage.open(name, "rb") as handle:
                read = handle.read()
            storage.delete(name)
        except Exception as exc:
            raise CommandError(
                f"Could not write, read and delete a file in the {where}: {exc}"
            ) from exc
        if read != b"probe":
            raise CommandError(f"A file written to the {where} read back differently.")
        self.stdout.write(f"Private files: the {where} can be written, read and deleted.")
