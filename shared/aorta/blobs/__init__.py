"""The blob store port (`BlobStore`, `BlobInfo`), its key rules and `open_blob_store`.

Adapters: `aorta.blobs.local.LocalBlobStore` (a folder) and `aorta.blobs.s3.S3BlobStore`
(MinIO or any S3 endpoint; imported on demand so that minio loads only where it is used).
"""

from aorta.blobs.factory import open_blob_store
from aorta.blobs.keys import check_key, check_prefix
from aorta.blobs.port import BlobInfo, BlobStore

__all__ = ["BlobInfo", "BlobStore", "check_key", "check_prefix", "open_blob_store"]
