"""The S3 REST protocol (path-style) over :class:`ObjectStore`, for the embedded stack.

Covers what Tansu (Rust object_store), pyiceberg (s3fs and pyarrow), DuckDB's httpfs and boto3
call: buckets, objects with ranges and conditional reads and writes, ListObjects V1 and V2,
DeleteObjects, CopyObject and multipart uploads. Signatures are not checked: the server listens
on loopback only and holds development data.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from aiohttp import web

from infra.local_s3.store import (
    BufferedBody,
    Listing,
    NewVersion,
    ObjectStore,
    ObjectVersion,
    S3Error,
    after,
    etag_values,
    precondition_failed,
)

LOG = logging.getLogger("riverbank.local_s3")
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
# Headers kept with an object and returned by GET and HEAD, as S3 does.
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
XML_BODY_LIMIT = 2 << 20  # DeleteObjects of 1,000 keys, CompleteMultipartUpload of 10,000 parts
INLINE_BODY = 1 << 20  # bodies up to this size are read whole; larger ones are streamed


class S3Server:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.rel_url.raw_path.lstrip("/")
        bucket, _, raw_key = path.partition("/")
        bucket, key = unquote(bucket), unquote(raw_key)
        try:
            if not bucket:
                if request.method in ("GET", "HEAD"):
                    return self.list_buckets()
                raise S3Error(
                    405, "MethodNotAllowed", "The specified method is not allowed against this resource."
                )
            if not key:
                return await self.bucket_request(request, bucket)
            return await self.object_request(request, bucket, key)
        except S3Error as error:
            return error_response(error, request)
        except Exception:
            # Logged with its traceback (the component's log); the client gets S3's InternalError.
            LOG.exception("%s %s failed", request.method, request.path)
            internal = S3Error(500, "InternalError", "We encountered an internal error. Please try again.")
            return error_response(internal, request)

    # buckets

    def list_buckets(self) -> web.Response:
        buckets = "".join(
            f"<Bucket><Name>{escape(b.name)}</Name><CreationDate>{iso_time(b.created)}</CreationDate></Bucket>"
            for b in self.store.buckets.values()
        )
        return xml_response(
            "ListAllMyBucketsResult",
            f"<Owner><ID>local</ID><DisplayName>local</DisplayName></Owner><Buckets>{buckets}</Buckets>",
        )

    async def bucket_request(self, request: web.BaseRequest, bucket: str) -> web.StreamResponse:
        query = request.rel_url.query
        method = request.method
        if method == "PUT":
            await request.read()
            self.store.create_bucket(bucket)
            return web.Response(headers={"Location": f"/{bucket}"})
        self.store.bucket(bucket)  # NoSuchBucket for everything below
        if method == "HEAD":
            return web.Response()
        if method == "DELETE":
            self.store.delete_bucket(bucket)
            return web.Response(status=204)
        if method == "POST" and "delete" in query:
            return await self.delete_objects(bucket, await request.read())
        if method == "GET":
            if "location" in query:
                return xml_response("LocationConstraint", "")
            if "uploads" in query:
                return xml_response(
                    "ListMultipartUploadsResult",
                    f"<Bucket>{escape(bucket)}</Bucket><IsTruncated>false</IsTruncated>",
                )
            if any(name in query for name in ("versioning", "acl", "policy", "cors", "lifecycle", "tagging")):
                raise not_implemented()
            return self.list_objects(bucket, query)
        raise not_implemented()

    def list_objects(self, bucket: str, query: Any) -> web.Response:
        version_2 = query.get("list-type") == "2"
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        url_encoded = query.get("encoding-type") == "url"
        try:
            max_keys = min(int(query.get("max-keys", "1000")), 1000)
        except ValueError:
            raise S3Error(400, "InvalidArgument", "max-keys must be an integer") from None
        if version_2:
            token = query.get("continuation-token")
            start_after = query.get("start-after", "")
            start_at = decode_token(token) if token else after(start_after) if start_after else ""
        else:
            marker = query.get("marker", "")
            start_at = after(marker) if marker else ""
        listing = self.store.list_keys(
            bucket, prefix=prefix, delimiter=delimiter, start_at=start_at, max_keys=max_keys
        )

        def text(value: str) -> str:
            return escape(quote(value, safe="/~") if url_encoded else value)

        head = [f"<Name>{escape(bucket)}</Name><Prefix>{text(prefix)}</Prefix><MaxKeys>{max_keys}</MaxKeys>"]
        if delimiter:
            head.append(f"<Delimiter>{text(delimiter)}</Delimiter>")
        if url_encoded:
            head.append("<EncodingType>url</EncodingType>")
        head.append(f"<IsTruncated>{'true' if listing.resume_at else 'false'}</IsTruncated>")
        if version_2:
            head.append(f"<KeyCount>{len(listing.objects) + len(listing.common_prefixes)}</KeyCount>")
            if query.get("continuation-token"):
                head.append(f"<ContinuationToken>{escape(query['continuation-token'])}</ContinuationToken>")
            elif query.get("start-after"):
                head.append(f"<StartAfter>{text(query['start-after'])}</StartAfter>")
            if listing.resume_at:
                head.append(
                    f"<NextContinuationToken>{encode_token(listing.resume_at)}</NextContinuationToken>"
                )
        else:
            head.append(f"<Marker>{text(query.get('marker', ''))}</Marker>")
            if listing.resume_at:
                head.append(f"<NextMarker>{text(last_entry(listing))}</NextMarker>")
        entries = (list_entry(v) if not url_encoded else list_entry(v, text(v.key)) for v in listing.objects)
        prefixes = (
            f"<CommonPrefixes><Prefix>{text(p)}</Prefix></CommonPrefixes>" for p in listing.common_prefixes
        )
        return xml_response("ListBucketResult", "".join(head) + "".join(entries) + "".join(prefixes))

    async def delete_objects(self, bucket: str, body: bytes) -> web.Response:
        root = parse_xml(body)
        quiet = any(child.tag.endswith("Quiet") and (child.text or "").strip() == "true" for child in root)
        deleted = [
            next((c.text or "" for c in element if c.tag.endswith("Key")), "")
            for element in root
            if element.tag.endswith("Object")
        ]
        files = self.store.unindex(bucket, deleted)
        if files:
            # Off the event loop: a DeleteObjects may name a thousand objects, and every other
            # request (the broker's Produces among them) would wait for their unlinks.
            await asyncio.to_thread(self.store.remove_files, bucket, files)
        result = "" if quiet else "".join(f"<Deleted><Key>{escape(key)}</Key></Deleted>" for key in deleted)
        return xml_response("DeleteResult", result)

    # objects

    async def object_request(self, request: web.BaseRequest, bucket: str, key: str) -> web.StreamResponse:
        query = request.rel_url.query
        method = request.method
        if method in ("GET", "HEAD"):
            if "uploadId" in query or "tagging" in query or "acl" in query:
                raise not_implemented()
            return await self.get_object(request, bucket, key)
        if method == "PUT":
            if "partNumber" in query and "uploadId" in query:
                return await self.upload_part(request, bucket, key, query["uploadId"], query["partNumber"])
            if "x-amz-copy-source" in request.headers:
                return await self.copy_object(request, bucket, key)
            if query:
                raise not_implemented()
            return await self.put_object(request, bucket, key)
        if method == "DELETE":
            if "uploadId" in query:
                self.store.abort_upload(bucket, key, query["uploadId"])
            else:
                self.store.delete(bucket, key)
            return web.Response(status=204)
        if method == "POST":
            if "uploads" in query:
                upload_id = self.store.start_upload(
                    bucket, key, content_type(request), stored_metadata(request)
                )
                return xml_response(
                    "InitiateMultipartUploadResult",
                    f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId>",
                )
            if "uploadId" in query:
                return await self.complete_upload(request, bucket, key, query["uploadId"])
        raise not_implemented()

    async def get_object(self, request: web.BaseRequest, bucket: str, key: str) -> web.StreamResponse:
        version = self.store.head(bucket, key)
        headers = object_headers(version)
        if not_modified := check_read_preconditions(request, version):
            return web.Response(status=not_modified, headers={"ETag": headers["ETag"]})
        start, end = 0, version.size - 1
        status = 200
        if (requested := request.headers.get("Range")) and version.size:
            start, end = parse_range(requested, version.size)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{version.size}"
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        if request.method == "HEAD":
            return web.Response(status=status, headers=headers)
        # The body file is opened now and read from this handle: a PUT that replaces the object
        # meanwhile unlinks the file, which does not cut this reader off.
        with self.store.open_body(bucket, version) as body:
            body.seek(start)
            if length <= INLINE_BODY:
                headers.pop("Content-Length")
                return web.Response(status=status, headers=headers, body=body.read(length))
            response = web.StreamResponse(status=status, headers=headers)
            await response.prepare(request)
            remaining = length
            while remaining:
                chunk = body.read(min(remaining, INLINE_BODY))
                if not chunk:
                    break
                remaining -= len(chunk)
                await response.write(chunk)
            await response.write_eof()
            return response

    async def put_object(self, request: web.BaseRequest, bucket: str, key: str) -> web.Response:
        new = self.store.new_body(bucket, declared_size(request))
        await receive(request, new)
        version = self.store.commit(
            bucket,
            key,
            new,
            content_type=content_type(request),
            metadata=stored_metadata(request),
            if_match=request.headers.get("If-Match"),
            if_none_match=request.headers.get("If-None-Match"),
        )
        return web.Response(headers={"ETag": f'"{version.etag}"'})

    async def copy_object(self, request: web.BaseRequest, bucket: str, key: str) -> web.Response:
        await request.read()
        source = unquote(request.headers["x-amz-copy-source"].split("?", 1)[0]).lstrip("/")
        source_bucket, _, source_key = source.partition("/")
        original = self.store.head(source_bucket, source_key)
        if request.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE":
            metadata, kind = stored_metadata(request), content_type(request)
        else:
            metadata, kind = dict(original.metadata), original.content_type
        new = self.store.copy(source_bucket, source_key, bucket)
        version = self.store.commit(
            bucket, key, new, etag=original.etag, content_type=kind, metadata=metadata
        )
        return xml_response(
            "CopyObjectResult",
            f'<LastModified>{iso_time(version.modified)}</LastModified><ETag>"{version.etag}"</ETag>',
        )

    async def upload_part(
        self, request: web.BaseRequest, bucket: str, key: str, upload_id: str, part_number: str
    ) -> web.Response:
        directory, _ = self.store.upload(bucket, key, upload_id)
        if not part_number.isdigit() or not 1 <= int(part_number) <= 10_000:
            raise S3Error(400, "InvalidArgument", "Part number must be an integer between 1 and 10000")
        partial = directory / f"{part_number}.{uuid.uuid4().hex}.partial"
        part = NewVersion(part_number, partial, partial.open("xb"))
        await receive(request, part)
        part.handle.close()
        partial.replace(directory / part_number)
        etag = part.md5.hexdigest()
        (directory / f"{part_number}.md5").write_text(etag)
        return web.Response(headers={"ETag": f'"{etag}"'})

    async def complete_upload(
        self, request: web.BaseRequest, bucket: str, key: str, upload_id: str
    ) -> web.Response:
        directory, description = self.store.upload(bucket, key, upload_id)
        root = parse_xml(await request.read())
        parts = []
        for part in root:
            fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in part}
            if not fields.get("PartNumber", "").isdigit():
                raise S3Error(400, "MalformedXML", "Each Part needs a PartNumber.")
            parts.append((int(fields["PartNumber"]), fields.get("ETag", "")))
        if not parts:
            raise S3Error(400, "MalformedXML", "The XML you provided did not list any part.")
        new, etag = self.store.assemble(bucket, directory, parts)
        version = self.store.commit(
            bucket,
            key,
            new,
            etag=etag,
            content_type=description["content_type"],
            metadata=description["metadata"],
            if_match=request.headers.get("If-Match"),
            if_none_match=request.headers.get("If-None-Match"),
        )
        self.store.abort_upload(bucket, key, upload_id)
        return xml_response(
            "CompleteMultipartUploadResult",
            f"<Location>/{escape(bucket)}/{escape(key)}</Location><Bucket>{escape(bucket)}</Bucket>"
            f'<Key>{escape(key)}</Key><ETag>"{version.etag}"</ETag>',
        )


def declared_size(request: web.BaseRequest) -> int | None:
    """The body's size as the request declares it (aws-chunked framing excluded), if it does."""
    declared = request.headers.get("x-amz-decoded-content-length") or (
        None if is_aws_chunked(request) else request.headers.get("Content-Length")
    )
    try:
        return None if declared is None else int(declared)
    except ValueError:
        raise S3Error(400, "InvalidArgument", f"Malformed body length {declared!r}.") from None


async def receive(request: web.BaseRequest, new: NewVersion | BufferedBody) -> None:
    """Write the request body into ``new``; a body cut short leaves nothing behind."""
    try:
        if request.headers.get("Expect", "").lower() == "100-continue":
            # boto3 asks before sending a body; without an answer it waits a second.
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        async for chunk in body_chunks(request):
            new.write(chunk)
        expected = declared_size(request)
        if expected is not None and expected != new.size:
            raise S3Error(400, "IncompleteBody", "You did not provide the number of bytes specified.")
    except BaseException:
        new.discard()
        raise


def is_aws_chunked(request: web.BaseRequest) -> bool:
    return request.headers.get("x-amz-content-sha256", "").startswith("STREAMING-") or "aws-chunked" in (
        request.headers.get("Content-Encoding", "")
    )


async def body_chunks(request: web.BaseRequest) -> AsyncIterator[bytes]:
    """The body's bytes, with the aws-chunked framing of streaming uploads removed."""
    if not is_aws_chunked(request):
        async for chunk in request.content.iter_chunked(1 << 16):
            yield chunk
        return
    while True:
        header = await request.content.readline()
        if not header.endswith(b"\n"):
            raise S3Error(400, "IncompleteBody", "The aws-chunked body ended early.")
        try:
            size = int(header.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise S3Error(400, "InvalidRequest", "Malformed aws-chunked chunk header.") from None
        if size == 0:
            while (await request.content.readline()).strip():
                pass  # trailing headers (checksums): not kept
            return
        yield await request.content.readexactly(size)
        await request.content.readexactly(2)  # the chunk's CRLF


def check_read_preconditions(request: web.BaseRequest, version: ObjectVersion) -> int | None:
    """304 or 412 when a conditional GET's condition says so, else None."""
    headers = request.headers
    if (if_match := headers.get("If-Match")) is not None:
        accepted = set(etag_values(if_match))
        if "*" not in accepted and version.etag not in accepted:
            raise precondition_failed("If-Match")
    if (if_none_match := headers.get("If-None-Match")) is not None:
        matching = set(etag_values(if_none_match))
        if "*" in matching or version.etag in matching:
            return 304
    elif (since := http_time(headers.get("If-Modified-Since"))) is not None and int(
        version.modified
    ) <= since:
        return 304
    if (unmodified := http_time(headers.get("If-Unmodified-Since"))) is not None and int(
        version.modified
    ) > unmodified:
        raise precondition_failed("If-Unmodified-Since")
    return None


def parse_range(header: str, size: int) -> tuple[int, int]:
    unit, _, spec = header.partition("=")
    first, _, last = spec.split(",", 1)[0].strip().partition("-")
    try:
        if unit.strip() != "bytes":
            raise ValueError(header)
        if first:
            start, end = int(first), int(last) if last else size - 1
        else:
            start, end = max(0, size - int(last)), size - 1
    except ValueError:
        raise S3Error(400, "InvalidArgument", f"Invalid Range header {header!r}") from None
    if start >= size or start > end:
        raise S3Error(416, "InvalidRange", "The requested range is not satisfiable", RangeRequested=header)
    return start, min(end, size - 1)


def http_time(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError):
        return None


def content_type(request: web.BaseRequest) -> str | None:
    return request.headers.get("Content-Type")


def stored_metadata(request: web.BaseRequest) -> dict[str, str]:
    kept = {}
    for name, value in request.headers.items():
        lower = name.lower()
        if lower.startswith("x-amz-meta-") or lower in STORED_HEADERS:
            kept[lower] = value
    encoding = [
        e for e in kept.get("content-encoding", "").split(",") if e.strip() and e.strip() != "aws-chunked"
    ]
    if encoding:
        kept["content-encoding"] = ",".join(encoding)
    else:
        kept.pop("content-encoding", None)
    return kept


def object_headers(version: ObjectVersion) -> dict[str, str]:
    return {
        "ETag": f'"{version.etag}"',
        "Last-Modified": formatdate(version.modified, usegmt=True),
        "Content-Type": version.content_type,
        "Accept-Ranges": "bytes",
        **version.metadata,
    }


def list_entry(version: ObjectVersion, key_text: str | None = None) -> str:
    """A listing's <Contents> element; for plain keys rendered once per version and kept."""
    if key_text is None and version.listing_xml is not None:
        return version.listing_xml
    entry = (
        f"<Contents><Key>{key_text if key_text is not None else escape(version.key)}</Key>"
        f"<LastModified>{iso_time(version.modified)}</LastModified><ETag>&quot;{version.etag}&quot;</ETag>"
        f"<Size>{version.size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
    )
    if key_text is None:
        version.listing_xml = entry
    return entry


def last_entry(listing: Listing) -> str:
    candidates = [v.key for v in listing.objects[-1:]] + listing.common_prefixes[-1:]
    return max(candidates)


def iso_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


def encode_token(resume_at: str) -> str:
    return base64.urlsafe_b64encode(resume_at.encode()).decode()


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise S3Error(400, "InvalidArgument", "The continuation token provided is incorrect") from None


def parse_xml(body: bytes) -> ET.Element:
    if len(body) > XML_BODY_LIMIT:
        raise S3Error(400, "MaxMessageLengthExceeded", "Your request was too big.")
    try:
        # CPython's expat resolves no external entity and caps entity expansion (libexpat 2.4+).
        return ET.fromstring(body)  # noqa: S314
    except ET.ParseError:
        raise S3Error(400, "MalformedXML", "The XML you provided was not well-formed.") from None


def not_implemented() -> S3Error:
    return S3Error(
        501, "NotImplemented", "A header or query you provided implies functionality that is not implemented"
    )


def xml_response(root: str, inner: str, status: int = 200) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{XMLNS}">{inner}</{root}>'
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


def error_response(error: S3Error, request: web.BaseRequest) -> web.Response:
    detail = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in error.detail.items())
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{error.code}</Code>'
        f"<Message>{escape(str(error))}</Message>{detail}<Resource>{escape(request.path)}</Resource>"
        "<RequestId>local</RequestId></Error>"
    )
    if request.method == "HEAD":
        return web.Response(status=error.status, headers={"x-amz-error-code": error.code})
    return web.Response(status=error.status, body=body.encode(), content_type="application/xml")
