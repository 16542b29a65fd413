"""Opens the blob store `AORTA_BLOB_STORE` names: the one place that chooses an adapter."""

from __future__ import annotations

from pathlib import Path

from aorta.blobs.local import LocalBlobStore
from aorta.blobs.port import BlobStore
from aorta.errors import Invalid
from aorta.settings import Settings, SettingsError

_FILE = "file:///"
_S3 = "s3://"


async def open_blob_store(settings: Settings) -> BlobStore:
    """The store for `settings.blob_store`, ready to use; the caller closes it.

    - `file:///PATH`: a local folder. As in `sqlite:///` URLs, PATH is what follows the three
      slashes: `file:///.aorta/blobs` is relative to the working directory and
      `file:////var/lib/aorta/blobs` is absolute. It is created if missing.
    - `s3://BUCKET[/PREFIX]`: an S3 endpoint (`settings.s3_*`); the bucket is created if missing
      and every key is stored under PREFIX.

    `SettingsError` (an `Invalid`) naming the variable for a location or endpoint that cannot
    work; the adapters' own errors otherwise (`Unavailable` when the endpoint cannot be reached).
    """
    location = settings.blob_store
    if location.startswith(_FILE) and len(location) > len(_FILE):
        folder = Path(location[len(_FILE) :])
        try:
            return await LocalBlobStore.open(folder)
        except OSError as error:
            raise SettingsError(
                f"setting AORTA_BLOB_STORE={location!r}: cannot use the folder {str(folder)!r}: "
                f"{error.strerror or error}"
            ) from error
    if location.startswith(_S3):
        # Imported here so that processes using the local store never load minio.
        from aorta.blobs.s3 import S3BlobStore, parse_location

        try:
            parse_location(location)
        except Invalid as error:
            raise SettingsError(f"setting AORTA_BLOB_STORE={location!r}: {error}") from None
        try:
            return await S3BlobStore.open(
                location,
                endpoint=settings.s3_endpoint,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key,
                secure=settings.s3_secure,
                region=settings.s3_region,
                public_endpoint=settings.s3_public_endpoint,
            )
        except Invalid as error:
            setting = "AORTA_S3_PUBLIC_ENDPOINT" if "public" in str(error) else "AORTA_S3_ENDPOINT"
            raise SettingsError(f"setting {setting}: {error}") from None
    raise SettingsError(
        f"setting AORTA_BLOB_STORE={location!r} is not a blob store location: "
        "use file:///PATH (a local folder) or s3://BUCKET[/PREFIX]"
    )
