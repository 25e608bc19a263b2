"""``python -m infra.local_s3 --directory DIR --port N [--bucket NAME ...]``: run the local S3."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from infra.local_s3.s3rver_import import import_s3rver_directory
from infra.local_s3.server import S3Server
from infra.local_s3.store import ObjectStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local_s3", description=__doc__)
    parser.add_argument("--directory", type=Path, required=True, help="where objects are kept")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--bucket", action="append", default=[], help="a bucket to create if missing")
    parser.add_argument(
        "--import-s3rver", type=Path, help="an s3rver directory to move into this store once (then renamed)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s"
    )
    store = ObjectStore(args.directory)
    if args.import_s3rver and args.import_s3rver.is_dir():
        count = import_s3rver_directory(args.import_s3rver, store)
        args.import_s3rver.rename(args.import_s3rver.with_name(args.import_s3rver.name + ".imported"))
        print(f"imported {count} object(s) from {args.import_s3rver}", file=sys.stderr)
    for bucket in args.bucket:
        store.create_bucket(bucket)
    try:
        asyncio.run(serve(S3Server(store), args.host, args.port))
    finally:
        store.close()
    return 0


async def serve(server: S3Server, host: str, port: int) -> None:
    # Bodies are stored as sent (no transparent decompression), and there is no access log.
    runner = web.ServerRunner(web.Server(server.handle, access_log=None, auto_decompress=False))
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    print(f"local S3 listening on http://{host}:{port}", file=sys.stderr, flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    await runner.cleanup()  # lets requests in flight finish


if __name__ == "__main__":
    sys.exit(main())
