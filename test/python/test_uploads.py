"""Uploads as modern S3 clients send them: boto3 and aws-cli over HTTPS and HTTP, with every flexible
checksum they offer, through osp to real MinIO.

What the clients here (boto3/botocore 1.43 with awscrt, aws-cli v1 on the same botocore) actually put
on the wire, recorded by a `before-send.s3.*` handler (boto3) or `--debug` (aws-cli) and asserted
below, so that a change in the clients shows up as a failing test rather than as a silently
untested path:

  PutObject / UploadPart over HTTPS (any body, default settings or any ChecksumAlgorithm):
      x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER, Content-Encoding: aws-chunked,
      Transfer-Encoding: chunked (no Content-Length), X-Amz-Decoded-Content-Length: <size>,
      X-Amz-Trailer: x-amz-checksum-<algorithm>  (default algorithm: CRC32)
      -> osp decodes the body and forwards the checksum as a trailer of an unsigned aws-chunked body
  PutObject over HTTP (bytes or a seekable file):
      x-amz-content-sha256: <hex sha256 of the body>, Content-Length, header x-amz-checksum-<algorithm>
  PutObject with an explicit ChecksumCRC32=... (HTTPS or HTTP):
      x-amz-content-sha256: <hex sha256>, header x-amz-checksum-crc32 (botocore then adds no trailer)
  aws s3 cp over HTTPS (single PUT and every UploadPart): STREAMING-UNSIGNED-PAYLOAD-TRAILER

Non-seekable bodies: botocore needs `read()` only over HTTPS (the trailer path never rewinds), and
uses a ContentLength given by the caller as X-Amz-Decoded-Content-Length. Without ContentLength it
sends no X-Amz-Decoded-Content-Length, which S3 (and MinIO) answer with 411 MissingContentLength.
Over HTTP botocore cannot send a non-seekable body at all: it calls tell()/seek() to compute the
header checksum (and the payload hash) before anything is sent, so the HTTP cases use a seekable file
object instead. Note that an io.BufferedReader over a pipe is *not* usable either: its tell() raises
OSError(ESPIPE), which botocore's determine_content_length does not catch (only
io.UnsupportedOperation), so the non-seekable body here is an io.RawIOBase over a generator.

The signed aws-chunked modes (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) are not sent by boto3 or
aws-cli; the wrong-checksum tests build them by hand (`_signed_chunked_put`) to cover a wrong
checksum in a signed trailer and a wrong header checksum on a signed-chunk body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import json
import os
import re
import ssl
import subprocess
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

import pytest
from botocore.exceptions import ClientError

from s3util import (
    ACCESS_KEY,
    ENDPOINT,
    REGION,
    SECRET_KEY,
    aws_cli_command,
    aws_cli_env,
    make_client,
    MiB,
    RawResponse,
    error_code,
    http_status,
)

try:
    from awscrt import checksums as crt_checksums
except ImportError:  # pragma: no cover - botocore[crt] is installed by test/install.sh
    crt_checksums = None

HTTPS_ENDPOINT = os.environ.get("OSP_HTTPS_ENDPOINT", "").rstrip("/")
CA_BUNDLE = os.environ.get("OSP_CA_BUNDLE", "") or os.environ.get("AWS_CA_BUNDLE", "")
AWS = aws_cli_command()

needs_https = pytest.mark.skipif(
    not (HTTPS_ENDPOINT and CA_BUNDLE), reason="OSP_HTTPS_ENDPOINT / OSP_CA_BUNDLE not set"
)
needs_crt = pytest.mark.skipif(crt_checksums is None, reason="awscrt (botocore[crt]) is not installed")
needs_aws = pytest.mark.skipif(AWS is None, reason="the `aws` command (aws-cli) is not installed")

ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
DEFAULT_ALGORITHM = "CRC32"  # what botocore 1.43 sends when no ChecksumAlgorithm is given
REJECTED_CHECKSUM_CODES = ("BadDigest", "XAmzContentChecksumMismatch", "InvalidRequest")
STREAMING_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# --------------------------------------------------------------------------- checksums


def checksum_digest(algorithm: str, data: bytes) -> bytes:
    """The big-endian digest S3 defines for a flexible checksum, computed independently of botocore."""
    a = algorithm.upper()
    if a == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if a == "CRC32C":
        return crt_checksums.crc32c(data).to_bytes(4, "big")
    if a == "CRC64NVME":
        return crt_checksums.crc64nvme(data).to_bytes(8, "big")
    if a == "SHA1":
        return hashlib.sha1(data).digest()
    if a == "SHA256":
        return hashlib.sha256(data).digest()
    raise ValueError(algorithm)


def checksum_b64(algorithm: str, data: bytes) -> str:
    return base64.b64encode(checksum_digest(algorithm, data)).decode()


def wrong_checksum(algorithm: str, data: bytes) -> str:
    """A well-formed value of the right length that is not the checksum of `data`."""
    right = checksum_digest(algorithm, data)
    return base64.b64encode(bytes(b ^ 0x5A for b in right)).decode()


def checksum_field(algorithm: str) -> str:
    """boto3's response/parameter name: ChecksumCRC32, ChecksumCRC32C, ChecksumCRC64NVME, ..."""
    return "Checksum" + algorithm.upper()


def composite_checksum(algorithm: str, parts) -> str:
    """S3's COMPOSITE checksum of a multipart object: the checksum of the concatenated part digests,
    then "-<number of parts>"."""
    digests = [checksum_digest(algorithm, p) for p in parts]
    return checksum_b64(algorithm, b"".join(digests)) + f"-{len(digests)}"


def md5_etag(data: bytes) -> str:
    return '"%s"' % hashlib.md5(data).hexdigest()


# --------------------------------------------------------------------------- bodies


class NonSeekable(io.RawIOBase):
    """A generator behind a read-only file object, like a socket or a pipe: no len(); seekable() is
    False and seek()/tell() raise io.UnsupportedOperation (RawIOBase's defaults)."""

    def __init__(self, data: bytes, piece: int = 64 * 1024):
        self._pieces = (data[i : i + piece] for i in range(0, len(data), piece))
        self._buf = b""
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = next(self._pieces)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        self.bytes_read += n
        return n


_DATA: dict[int, bytes] = {}


def data_of(size: int) -> bytes:
    """Random bytes of `size`, generated once per session and shared by the cases of that size."""
    if size not in _DATA:
        _DATA[size] = os.urandom(size)
    return _DATA[size]


# --------------------------------------------------------------------------- clients and what they sent


@dataclass
class Sent:
    operation: str
    method: str
    url: str
    headers: dict  # lower-cased names, str values


class Recorder:
    """Records the headers of every request a boto3 client sends (before-send: after signing and
    after the checksum/aws-chunked transformation, i.e. what goes on the wire)."""

    def __init__(self, client):
        self.sent: list[Sent] = []
        client.meta.events.register("before-send.s3.*", self._record)

    def _record(self, request, event_name: str, **_):
        headers = {
            k.lower(): (v.decode() if isinstance(v, (bytes, bytearray)) else str(v))
            for k, v in request.headers.items()
        }
        self.sent.append(Sent(event_name.rsplit(".", 1)[-1], request.method, request.url, headers))

    def clear(self) -> None:
        self.sent.clear()

    def only(self, operation: str) -> Sent:
        hits = [s for s in self.sent if s.operation == operation]
        assert len(hits) == 1, [(s.operation, s.url) for s in self.sent]
        return hits[0]


def _client(endpoint: str):
    client = make_client(endpoint, ACCESS_KEY, SECRET_KEY, verify=CA_BUNDLE if endpoint.startswith("https") else None)
    return client, Recorder(client)


@pytest.fixture(scope="module")
def boto_https():
    if not (HTTPS_ENDPOINT and CA_BUNDLE):
        pytest.skip("OSP_HTTPS_ENDPOINT / OSP_CA_BUNDLE not set")
    return _client(HTTPS_ENDPOINT)


@pytest.fixture(scope="module")
def boto_http():
    return _client(ENDPOINT)


def assert_rejected_checksum(exc: ClientError) -> None:
    assert error_code(exc) in REJECTED_CHECKSUM_CODES, (error_code(exc), exc.response)
    assert http_status(exc) == 400, exc.response


# --------------------------------------------------------------------------- 1. put_object, every checksum


SIZES = [0, 1, 100 * 1024, 5 * MiB + 1]
SIZE_IDS = ["0B", "1B", "100KiB", "5MiB+1"]
# (scheme, body): over HTTP botocore cannot send a non-seekable body (see the module docstring), so
# HTTP's file-object case is a seekable file (BytesIO: the path of open(..., "rb") bodies)
BODIES = [("https", "bytes"), ("https", "stream"), ("http", "bytes"), ("http", "file")]


@needs_crt
@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("algorithm", [None, *ALGORITHMS], ids=["default", *ALGORITHMS])
@pytest.mark.parametrize("scheme,body", BODIES, ids=[f"{s}-{b}" for s, b in BODIES])
def test_put_object_checksums(request, target_a, prefix, scheme, body, algorithm, size):
    client, rec = request.getfixturevalue(f"boto_{scheme}")
    t = target_a
    data = data_of(size)
    algo = algorithm or DEFAULT_ALGORITHM
    want = checksum_b64(algo, data)
    key = f"{prefix}{scheme}-{body}-{algo}-{size}.bin"

    kwargs = {"Bucket": t.bucket, "Key": key}
    if algorithm:
        kwargs["ChecksumAlgorithm"] = algorithm
    if body == "bytes":
        kwargs["Body"] = data
    elif body == "file":
        kwargs["Body"] = io.BytesIO(data)
    else:  # non-seekable: botocore needs the length from the caller (X-Amz-Decoded-Content-Length)
        stream = NonSeekable(data)
        kwargs.update(Body=stream, ContentLength=size)

    rec.clear()
    put = client.put_object(**kwargs)
    sent = rec.only("PutObject").headers

    # the mode the client really used
    if scheme == "https":
        assert sent["x-amz-content-sha256"] == STREAMING_TRAILER, sent
        assert sent["content-encoding"] == "aws-chunked"
        assert sent.get("transfer-encoding") == "chunked" and "content-length" not in sent
        assert sent["x-amz-decoded-content-length"] == str(size)
        assert sent["x-amz-trailer"] == f"x-amz-checksum-{algo.lower()}"
        assert f"x-amz-checksum-{algo.lower()}" not in sent  # trailer only, not a header
    else:
        assert sent["x-amz-content-sha256"] == hashlib.sha256(data).hexdigest(), sent
        assert "content-encoding" not in sent and "x-amz-trailer" not in sent
        assert sent["content-length"] == str(size)
        assert sent[f"x-amz-checksum-{algo.lower()}"] == want
    if body == "stream":
        assert stream.bytes_read == size

    assert http_status(put) == 200
    assert put["ETag"] == md5_etag(data)
    assert put.get(checksum_field(algo)) == want, put

    # what MinIO stored: the decoded bytes (no chunk framing), their MD5 ETag and the checksum
    head_b = t.backend.head_object(Bucket=t.backend_bucket, Key=key, ChecksumMode="ENABLED")
    assert head_b["ContentLength"] == size
    assert head_b["ETag"] == md5_etag(data)
    assert head_b.get(checksum_field(algo)) == want, head_b
    assert t.backend_get(key) == data

    # and what osp shows
    head = client.head_object(Bucket=t.bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == size
    assert head.get(checksum_field(algo)) == want
    got = client.get_object(Bucket=t.bucket, Key=key, ChecksumMode="ENABLED")
    assert got.get(checksum_field(algo)) == want
    assert got["Body"].read() == data


@needs_https
@needs_crt
@pytest.mark.parametrize("algorithm", ["CRC64NVME", "SHA256"])
def test_put_object_https_bucket_b(boto_https, target_b, prefix, algorithm):
    """The renamed bucket (beta -> beta-real on MinIO B) takes the aws-chunked path too."""
    client, rec = boto_https
    data = data_of(100 * 1024)
    key = prefix + "b.bin"
    rec.clear()
    put = client.put_object(
        Bucket=target_b.bucket, Key=key, Body=NonSeekable(data), ContentLength=len(data), ChecksumAlgorithm=algorithm
    )
    assert rec.only("PutObject").headers["x-amz-content-sha256"] == STREAMING_TRAILER
    assert put["ETag"] == md5_etag(data)
    head_b = target_b.backend.head_object(Bucket=target_b.backend_bucket, Key=key, ChecksumMode="ENABLED")
    assert head_b.get(checksum_field(algorithm)) == checksum_b64(algorithm, data)
    assert target_b.backend_get(key) == data


@needs_https
def test_put_non_seekable_without_length_https(boto_https, target_a, prefix):
    """botocore sends a non-seekable body without ContentLength as aws-chunked with no
    X-Amz-Decoded-Content-Length. S3 and MinIO refuse that with 411 MissingContentLength; so does
    osp, and nothing is written."""
    client, rec = boto_https
    key = prefix + "no-length.bin"
    rec.clear()
    with pytest.raises(ClientError) as ei:
        client.put_object(Bucket=target_a.bucket, Key=key, Body=NonSeekable(data_of(100 * 1024)))
    sent = rec.only("PutObject").headers
    assert sent["x-amz-content-sha256"] == STREAMING_TRAILER
    assert "x-amz-decoded-content-length" not in sent
    assert error_code(ei.value) == "MissingContentLength"
    assert http_status(ei.value) == 411
    assert not target_a.backend_exists(key)


# --------------------------------------------------------------------------- 2. multipart with checksums


@needs_https
@pytest.mark.parametrize("tname", ["target_a", "target_b"], ids=["alpha", "beta"])
def test_multipart_checksums_https(request, boto_https, prefix, tname):
    t = request.getfixturevalue(tname)
    client, rec = boto_https
    key = prefix + "mp checksums.bin"
    parts_data = [data_of(5 * MiB), data_of(1 * MiB)]
    whole = b"".join(parts_data)

    up = client.create_multipart_upload(Bucket=t.bucket, Key=key, ChecksumAlgorithm="CRC32")
    assert up.get("ChecksumAlgorithm") == "CRC32"
    upload_id = up["UploadId"]

    parts = []
    for n, data in enumerate(parts_data, start=1):
        rec.clear()
        r = client.upload_part(
            Bucket=t.bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data, ChecksumAlgorithm="CRC32"
        )
        sent = rec.only("UploadPart").headers
        assert sent["x-amz-content-sha256"] == STREAMING_TRAILER, sent
        assert sent["x-amz-trailer"] == "x-amz-checksum-crc32"
        assert r["ETag"] == md5_etag(data)
        assert r.get("ChecksumCRC32") == checksum_b64("CRC32", data), r
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})

    listed = client.list_parts(Bucket=t.bucket, Key=key, UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"], p.get("ChecksumCRC32")) for p in listed["Parts"]] == [
        (p["PartNumber"], p["ETag"], len(d), checksum_b64("CRC32", d)) for p, d in zip(parts, parts_data)
    ]
    assert not t.backend_exists(key)

    done = client.complete_multipart_upload(
        Bucket=t.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert http_status(done) == 200
    assert done["ETag"].endswith('-2"')
    composite = composite_checksum("CRC32", parts_data)
    assert composite.endswith("-2")
    assert done.get("ChecksumCRC32") == composite, done

    assert t.backend_get(key) == whole
    head_b = t.backend.head_object(Bucket=t.backend_bucket, Key=key, ChecksumMode="ENABLED")
    assert head_b["ContentLength"] == len(whole)
    assert head_b.get("ChecksumCRC32") == composite
    head = client.head_object(Bucket=t.bucket, Key=key, ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32") == composite
    assert client.get_object(Bucket=t.bucket, Key=key)["Body"].read() == whole


# --------------------------------------------------------------------------- 3. aws-cli over HTTPS


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    return aws_cli_env(tmp_path_factory.mktemp("awscfg-uploads"), AWS_CA_BUNDLE=CA_BUNDLE)


@pytest.fixture
def aws_https(cli_env):
    if not (HTTPS_ENDPOINT and CA_BUNDLE):
        pytest.skip("OSP_HTTPS_ENDPOINT / OSP_CA_BUNDLE not set")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [*AWS, "--endpoint-url", HTTPS_ENDPOINT, "--ca-bundle", CA_BUNDLE, *args]
        p = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=180)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args)} -> rc={p.returncode}\n{p.stdout}\n{p.stderr[-4000:]}")
        return p

    return run


_SENT_PUT = re.compile(r"Sending http request: <AWSPreparedRequest [^>]*?method=PUT, url=(\S+), headers=\{(.*)\}>")


def cli_put_modes(debug_stderr: str) -> list[tuple[str, str, str]]:
    """(url, x-amz-content-sha256, x-amz-trailer) of every PUT in aws-cli --debug output."""
    out = []
    for m in _SENT_PUT.finditer(debug_stderr):
        headers = m.group(2)
        sha = re.search(r"'x-amz-content-sha256': b'([^']*)'", headers, re.I)
        trailer = re.search(r"'X-Amz-Trailer': b'([^']*)'", headers, re.I)
        out.append((m.group(1), sha.group(1) if sha else "", trailer.group(1) if trailer else ""))
    return out


def _sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MiB), b""):
            h.update(chunk)
    return h.hexdigest()


@needs_aws
@pytest.mark.big
def test_cli_cp_100mib_https(aws_https, target_a, prefix, big_file, tmp_path):
    path, size, digest = big_file
    key = prefix + "big https.bin"
    uri = f"s3://{target_a.bucket}/{key}"
    up = aws_https("--debug", "s3", "cp", str(path), uri, "--only-show-errors")
    modes = cli_put_modes(up.stderr)
    # a multipart upload (8 MiB parts), every part aws-chunked with a trailing CRC32
    assert len(modes) == 13 and all("partNumber=" in u for u, _, _ in modes), modes
    assert {(sha, tr) for _, sha, tr in modes} == {(STREAMING_TRAILER, "x-amz-checksum-crc32")}, modes

    # s3transfer's default 8 MiB parts, each with its CRC32: MinIO stores the composite CRC32
    with open(path, "rb") as f:
        want = composite_checksum("CRC32", iter(lambda: f.read(8 * MiB), b""))
    assert want.endswith("-13")
    head_b = target_a.backend.head_object(Bucket=target_a.backend_bucket, Key=key, ChecksumMode="ENABLED")
    assert head_b["ContentLength"] == size
    assert head_b["ETag"].endswith('-13"')
    assert head_b.get("ChecksumCRC32") == want, head_b
    assert head_b.get("ChecksumType") == "COMPOSITE"

    info = json.loads(
        aws_https(
            "s3api", "head-object", "--bucket", target_a.bucket, "--key", key, "--checksum-mode", "ENABLED"
        ).stdout
    )
    assert info["ContentLength"] == size
    assert info.get("ChecksumCRC32") == want

    out = tmp_path / "down.bin"
    aws_https("s3", "cp", uri, str(out), "--only-show-errors")
    assert out.stat().st_size == size
    assert _sha256_file(out) == digest


@needs_aws
@needs_crt
@pytest.mark.parametrize("algorithm", ["CRC32C", "SHA256"])
def test_cli_cp_checksum_algorithm_https(aws_https, target_a, prefix, tmp_path, algorithm):
    data = data_of(3 * MiB + 7)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    key = f"{prefix}cli {algorithm}.bin"
    uri = f"s3://{target_a.bucket}/{key}"
    up = aws_https("--debug", "s3", "cp", str(src), uri, "--checksum-algorithm", algorithm, "--only-show-errors")
    modes = cli_put_modes(up.stderr)
    assert [(sha, tr) for _, sha, tr in modes] == [(STREAMING_TRAILER, f"x-amz-checksum-{algorithm.lower()}")]

    want = checksum_b64(algorithm, data)
    info = json.loads(
        aws_https(
            "s3api", "head-object", "--bucket", target_a.bucket, "--key", key, "--checksum-mode", "ENABLED"
        ).stdout
    )
    assert info["ContentLength"] == len(data)
    assert info.get(checksum_field(algorithm)) == want, info
    assert info["ETag"] == md5_etag(data)
    head_b = target_a.backend.head_object(Bucket=target_a.backend_bucket, Key=key, ChecksumMode="ENABLED")
    assert head_b.get(checksum_field(algorithm)) == want
    assert target_a.backend_get(key) == data

    out = tmp_path / "down.bin"
    aws_https("s3", "cp", uri, str(out), "--only-show-errors")
    assert out.read_bytes() == data


# --------------------------------------------------------------------------- 4. wrong checksums write nothing


OLD = b"the older version of this key, which must survive\n"


def _put_old(t, key: str) -> None:
    t.backend.put_object(Bucket=t.backend_bucket, Key=key, Body=OLD)


def _assert_untouched(t, new_key: str, old_key: str) -> None:
    assert not t.backend_exists(new_key)
    assert t.backend_get(old_key) == OLD
    assert t.backend_head(old_key)["ETag"] == md5_etag(OLD)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_wrong_header_checksum_boto3(request, target_a, prefix, scheme):
    """ChecksumCRC32 given explicitly: botocore sends it as a header (x-amz-content-sha256 is the
    hex payload hash, no aws-chunked, over HTTPS too); MinIO rejects the mismatch."""
    client, rec = request.getfixturevalue(f"boto_{scheme}")
    data = data_of(100 * 1024)
    new_key, old_key = prefix + "new.bin", prefix + "old.bin"
    _put_old(target_a, old_key)
    for key in (new_key, old_key):
        rec.clear()
        with pytest.raises(ClientError) as ei:
            client.put_object(Bucket=target_a.bucket, Key=key, Body=data, ChecksumCRC32=wrong_checksum("CRC32", data))
        sent = rec.only("PutObject").headers
        assert sent["x-amz-content-sha256"] == hashlib.sha256(data).hexdigest()
        assert sent["x-amz-checksum-crc32"] == wrong_checksum("CRC32", data)
        assert "x-amz-trailer" not in sent
        assert_rejected_checksum(ei.value)
    _assert_untouched(target_a, new_key, old_key)


def _corrupt_trailer(request, **_):
    """before-send: swap the trailing checksum botocore computed for a wrong one of the same length.
    The trailer of STREAMING-UNSIGNED-PAYLOAD-TRAILER is not signed, so only the checksum check can
    catch it."""
    body = request.body
    raw = body.read() if hasattr(body, "read") else bytes(body)
    m = re.search(rb"\r\n(x-amz-checksum-[a-z0-9]+):([A-Za-z0-9+/=]+)\r\n\r\n$", raw)
    assert m, raw[-200:]
    bad = base64.b64encode(bytes(b ^ 0x5A for b in base64.b64decode(m.group(2))))
    request.body = raw[: m.start(2)] + bad + raw[m.end(2) :]


@needs_https
@needs_crt
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_wrong_trailer_checksum_boto3_https(boto_https, target_a, prefix, algorithm):
    client, rec = boto_https
    data = data_of(100 * 1024)
    new_key, old_key = prefix + "new.bin", prefix + "old.bin"
    _put_old(target_a, old_key)
    client.meta.events.register("before-send.s3.PutObject", _corrupt_trailer, unique_id="corrupt-trailer")
    try:
        for key in (new_key, old_key):
            rec.clear()
            with pytest.raises(ClientError) as ei:
                client.put_object(
                    Bucket=target_a.bucket,
                    Key=key,
                    Body=NonSeekable(data),
                    ContentLength=len(data),
                    ChecksumAlgorithm=algorithm,
                )
            sent = rec.only("PutObject").headers
            assert sent["x-amz-content-sha256"] == STREAMING_TRAILER
            assert sent["x-amz-trailer"] == f"x-amz-checksum-{algorithm.lower()}"
            assert_rejected_checksum(ei.value)
    finally:
        client.meta.events.unregister("before-send.s3.PutObject", unique_id="corrupt-trailer")
    _assert_untouched(target_a, new_key, old_key)


# signed aws-chunked bodies, built by hand (neither boto3 nor aws-cli sends them)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _signed_chunked_put(
    url: str,
    data: bytes,
    *,
    trailer: tuple[str, str] | None = None,
    extra_headers: dict | None = None,
    chunk_size: int = 64 * 1024,
) -> RawResponse:
    """PUT `data` as STREAMING-AWS4-HMAC-SHA256-PAYLOAD (or ...-PAYLOAD-TRAILER with `trailer` =
    (name, value)) with valid seed, chunk and trailer signatures, over HTTPS (HTTP/1.1)."""
    u = urlsplit(url)
    now = datetime.now(timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/{REGION}/s3/aws4_request"
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + SECRET_KEY).encode(), day), REGION), "s3"), "aws4_request")
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")

    # the body's length is part of the signed headers, so frame first with placeholder signatures
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    sig_len = 64

    def frame(sigs: list[str], trailer_sig: str) -> bytes:
        out = bytearray()
        for piece, sig in zip(pieces, sigs):
            out += f"{len(piece):x};chunk-signature={sig}\r\n".encode()
            if piece:
                out += piece + b"\r\n"
        if trailer:
            out += f"{trailer[0]}:{trailer[1]}\r\n".encode()
            out += f"x-amz-trailer-signature:{trailer_sig}\r\n".encode()
        out += b"\r\n"
        return bytes(out)

    length = len(frame(["0" * sig_len] * len(pieces), "0" * sig_len))
    headers = {
        "host": u.netloc,
        "content-encoding": "aws-chunked",
        "content-length": str(length),
        "x-amz-content-sha256": mode,
        "x-amz-date": amz_date,
        "x-amz-decoded-content-length": str(len(data)),
    }
    if trailer:
        headers["x-amz-trailer"] = trailer[0]
    headers.update({k.lower(): v for k, v in (extra_headers or {}).items()})
    signed = sorted(headers)
    canonical = "\n".join(
        ["PUT", u.path, "", *[f"{k}:{headers[k].strip()}" for k in signed], "", ";".join(signed), mode]
    )
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    seed = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={';'.join(signed)}, Signature={seed}"
    )

    sigs, prev = [], seed
    for piece in pieces:
        sts = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA256, hashlib.sha256(piece).hexdigest()]
        )
        prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        sigs.append(prev)
    trailer_sig = ""
    if trailer:
        canonical_trailer = f"{trailer[0]}:{trailer[1]}\n".encode()
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev, hashlib.sha256(canonical_trailer).hexdigest()])
        trailer_sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    body = frame(sigs, trailer_sig if trailer else "0" * sig_len)
    assert len(body) == length

    ctx = ssl.create_default_context(cafile=CA_BUNDLE)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
    try:
        conn.putrequest("PUT", u.path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def _https_url(bucket: str, key: str) -> str:
    return f"{HTTPS_ENDPOINT}/{bucket}/{quote(key, safe='/~')}"


@needs_https
@needs_crt
@pytest.mark.parametrize("algorithm", ["CRC32", "CRC64NVME", "SHA256"])
def test_signed_trailer_checksum(target_a, prefix, algorithm):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: a right checksum is stored; a wrong one, correctly
    signed (so osp's trailer-signature check passes), is rejected by MinIO and writes nothing."""
    data = data_of(100 * 1024)
    name = f"x-amz-checksum-{algorithm.lower()}"

    ok_key = prefix + "ok.bin"
    r = _signed_chunked_put(_https_url(target_a.bucket, ok_key), data, trailer=(name, checksum_b64(algorithm, data)))
    assert r.status == 200, (r.status, r.body)
    assert r.headers.get("etag") == md5_etag(data)
    head_b = target_a.backend.head_object(Bucket=target_a.backend_bucket, Key=ok_key, ChecksumMode="ENABLED")
    assert head_b.get(checksum_field(algorithm)) == checksum_b64(algorithm, data)
    assert target_a.backend_get(ok_key) == data

    new_key, old_key = prefix + "new.bin", prefix + "old.bin"
    _put_old(target_a, old_key)
    for key in (new_key, old_key):
        r = _signed_chunked_put(_https_url(target_a.bucket, key), data, trailer=(name, wrong_checksum(algorithm, data)))
        assert r.status == 400 and r.xml_code() in REJECTED_CHECKSUM_CODES, (r.status, r.body)
    _assert_untouched(target_a, new_key, old_key)


@needs_https
def test_signed_chunks_header_checksum(target_a, prefix):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD with an x-amz-checksum-crc32 header (as SDKs that sign
    chunks send it): forwarded as a header; right is stored, wrong is rejected and writes nothing."""
    data = data_of(100 * 1024)
    ok_key = prefix + "ok.bin"
    r = _signed_chunked_put(
        _https_url(target_a.bucket, ok_key), data, extra_headers={"x-amz-checksum-crc32": checksum_b64("CRC32", data)}
    )
    assert r.status == 200, (r.status, r.body)
    head_b = target_a.backend.head_object(Bucket=target_a.backend_bucket, Key=ok_key, ChecksumMode="ENABLED")
    assert head_b.get("ChecksumCRC32") == checksum_b64("CRC32", data)
    assert target_a.backend_get(ok_key) == data

    new_key, old_key = prefix + "new.bin", prefix + "old.bin"
    _put_old(target_a, old_key)
    for key in (new_key, old_key):
        r = _signed_chunked_put(
            _https_url(target_a.bucket, key), data, extra_headers={"x-amz-checksum-crc32": wrong_checksum("CRC32", data)}
        )
        assert r.status == 400 and r.xml_code() in REJECTED_CHECKSUM_CODES, (r.status, r.body)
    _assert_untouched(target_a, new_key, old_key)
