"""One-time import of a directory written by s3rver, the embedded stack's earlier local S3.

s3rver kept an object as ``<bucket>/<key>._S3rver_object`` with ``.md5`` and
``._S3rver_metadata.json`` beside it. A stack upgraded in place keeps its broker's topics and its
lake's files: each object is copied into the new store under its key, with its etag and
metadata; the caller then renames the old directory, so the import runs once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from infra.local_s3.store import ObjectStore

OBJECT_SUFFIX = "._S3rver_object"
METADATA_SUFFIX = "._S3rver_metadata.json"


def import_s3rver_directory(old: Path, store: ObjectStore) -> int:
    """Move every object under ``old`` into ``store``; returns how many were imported."""
    imported = 0
    for bucket_dir in sorted(p for p in old.iterdir() if p.is_dir()):
        store.create_bucket(bucket_dir.name)
        for body in bucket_dir.rglob(f"*{OBJECT_SUFFIX}"):
            relative = body.relative_to(bucket_dir).as_posix()
            key = relative.removesuffix(OBJECT_SUFFIX)
            stored = _read_json(body.with_name(body.name.removesuffix(OBJECT_SUFFIX) + METADATA_SUFFIX))
            md5_file = body.with_name(body.name + ".md5")
            etag = md5_file.read_text().strip() if md5_file.exists() else ""
            new = store.new_version(bucket_dir.name)
            with body.open("rb") as source:
                shutil.copyfileobj(source, new)
            content_type = stored.pop("content-type", None)
            metadata = {k: v for k, v in stored.items() if isinstance(v, str)}
            store.commit(
                bucket_dir.name,
                key,
                new,
                etag=etag or None,
                content_type=content_type if isinstance(content_type, str) else None,
                metadata=metadata,
            )
            imported += 1
    return imported


def _read_json(path: Path) -> dict[str, object]:
    try:
        loaded = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
