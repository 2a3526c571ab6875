"""The trial object store (stella-ops/trial-s3): moto's S3 server on $STELLA_S3_ADDRESS
(default 0.0.0.0:9000), with the buckets named in $STELLA_S3_BUCKETS (comma-separated)
created at every start, in $AWS_REGION (default us-east-1).

moto keeps everything in memory: objects are gone when the process ends, and it checks no
credentials (any access key is accepted). For a trial only; production uses a real S3 bucket.
"""

import os
import signal
import sys
import threading

import boto3
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer


def main() -> int:
    host, _, port = os.environ.get("STELLA_S3_ADDRESS", "0.0.0.0:9000").rpartition(":")
    buckets = [b for b in os.environ.get("STELLA_S3_BUCKETS", "").split(",") if b.strip()]
    region = os.environ.get("AWS_REGION", "us-east-1")

    server = ThreadedMotoServer(ip_address=host, port=int(port), verbose=False)
    server.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=region,
        aws_access_key_id="stella",
        aws_secret_access_key="stella",
    )
    for bucket in buckets:
        options = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}
        }
        try:
            client.create_bucket(Bucket=bucket.strip(), **options)
        except ClientError as error:
            print(f"stella-s3: failed to create bucket {bucket.strip()!r}: {error}", file=sys.stderr)
            server.stop()
            return 1
    print(
        f"stella-s3: serving S3 on {host}:{port} (in memory), buckets: {', '.join(buckets) or 'none'}",
        flush=True,
    )

    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
