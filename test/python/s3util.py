"""Helpers shared by the osp pytest suite: configuration from the environment, boto3 clients,
backend views, and raw HTTP (signed or not) for checking exact wire behaviour."""

from __future__ import annotations

import base64
import hashlib
import http.client
import importlib.util
import os
import socket
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email.header import decode_header, make_header
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

MiB = 1024 * 1024
BIG_SIZE = 100 * MiB

ENDPOINT = os.environ.get("OSP_ENDPOINT", "").rstrip("/")
REGION = os.environ.get("OSP_REGION", "us-east-1")
ACCESS_KEY = os.environ.get("OSP_ACCESS_KEY", "")
SECRET_KEY = os.environ.get("OSP_SECRET_KEY", "")
LIMITED_ACCESS_KEY = os.environ.get("OSP_LIMITED_ACCESS_KEY", "")
LIMITED_SECRET_KEY = os.environ.get("OSP_LIMITED_SECRET_KEY", "")
BUCKET_A = os.environ.get("OSP_BUCKET_A", "alpha")
BUCKET_B = os.environ.get("OSP_BUCKET_B", "beta")
BUCKET_B_BACKEND = os.environ.get("OSP_BUCKET_B_BACKEND", BUCKET_B)
BUCKET_DOWN = os.environ.get("OSP_BUCKET_DOWN", "")
MINIO_A = os.environ.get("MINIO_A_ENDPOINT", "").rstrip("/")
MINIO_B = os.environ.get("MINIO_B_ENDPOINT", "").rstrip("/")
MINIO_USER = os.environ.get("MINIO_ROOT_USER", "")
MINIO_PASSWORD = os.environ.get("MINIO_ROOT_PASSWORD", "")
BUCKET_V = os.environ.get("OSP_BUCKET_V", "gamma")
BUCKET_V_BACKEND = os.environ.get("OSP_BUCKET_V_BACKEND", BUCKET_V)
VERSITYGW = os.environ.get("VERSITYGW_ENDPOINT", "").rstrip("/")
VERSITYGW_USER = os.environ.get("VERSITYGW_ACCESS_KEY", "")
VERSITYGW_PASSWORD = os.environ.get("VERSITYGW_SECRET_KEY", "")

# Two backends that are really distinct servers (cross-backend copy only means something then).
DISTINCT_BACKENDS = bool(MINIO_A and MINIO_B and MINIO_A != MINIO_B)

needs_limited = pytest.mark.skipif(
    not (LIMITED_ACCESS_KEY and LIMITED_SECRET_KEY),
    reason="OSP_LIMITED_ACCESS_KEY/OSP_LIMITED_SECRET_KEY not set (proxy-only test)",
)
needs_down = pytest.mark.skipif(not BUCKET_DOWN, reason="OSP_BUCKET_DOWN not set (proxy-only test)")


# --------------------------------------------------------------------------- clients


def s3_config(**extra) -> Config:
    defaults = dict(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1},
        signature_version="s3v4",
        connect_timeout=10,
        read_timeout=120,
    )
    return Config(**{**defaults, **extra})


def add_content_md5(request, **_):
    """before-sign handler: add Content-MD5 to DeleteObjects.

    botocore >= 1.43 stopped sending Content-MD5 for DeleteObjects (it sends x-amz-checksum-crc32
    instead). AWS S3 accepts that, the MinIO built here accepts it too, but older MinIO releases
    and other S3 servers still require Content-MD5 for this operation, and their users register
    exactly this handler. So the suite sends DeleteObjects both ways: the proxy has to forward
    (and keep a valid signature over) a client-supplied Content-MD5 as well as the CRC32 header.
    """
    body = request.body or b""
    if hasattr(body, "read"):
        pos = body.tell()
        data = body.read()
        body.seek(pos)
    else:
        data = body if isinstance(body, bytes) else str(body).encode()
    if "Content-MD5" not in request.headers:
        request.headers["Content-MD5"] = base64.b64encode(hashlib.md5(data).digest()).decode()


def make_client(endpoint: str, access: str, secret: str, content_md5: bool = False, verify=None, **extra):
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=s3_config(**extra),
        verify=verify,
    )
    if content_md5:
        client.meta.events.register("before-sign.s3.DeleteObjects", add_content_md5)
    return client


def metadata_text(value: str) -> str:
    """What a user-metadata value says. MinIO answers non-ASCII values RFC 2047-encoded; versitygw
    answers their UTF-8 bytes as they were stored, which botocore reads as latin-1."""
    decoded = str(make_header(decode_header(value)))
    if decoded != value:
        return decoded
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


@dataclass(frozen=True)
class Target:
    """A bucket as seen through osp, and where it really lives."""

    bucket: str  # name through osp
    backend: object  # boto3 client talking straight to the backend
    backend_bucket: str  # the bucket's real name on that backend
    server: str = "minio"  # which S3 implementation the backend is: "minio" or "versitygw"

    def backend_get(self, key: str) -> bytes:
        return self.backend.get_object(Bucket=self.backend_bucket, Key=key)["Body"].read()

    def backend_head(self, key: str) -> dict:
        return self.backend.head_object(Bucket=self.backend_bucket, Key=key)

    def backend_exists(self, key: str) -> bool:
        try:
            self.backend_head(key)
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def backend_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.backend.get_paginator("list_objects_v2").paginate(
            Bucket=self.backend_bucket, Prefix=prefix
        ):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys


# --------------------------------------------------------------------------- raw HTTP


@dataclass
class RawResponse:
    status: int
    headers: dict  # lower-cased names
    body: bytes

    def xml_code(self) -> str | None:
        return xml_field(self.body, "Code")

    def xml_message(self) -> str | None:
        return xml_field(self.body, "Message")


def xml_field(body: bytes, field: str) -> str | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == field:
            return el.text
    return None


def xml_all(body: bytes, field: str) -> list[str]:
    """Text of every element named `field` (namespace ignored), in document order."""
    root = ET.fromstring(body)
    return [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == field]


def obj_url(bucket: str, key: str = "", endpoint: str | None = None) -> str:
    base = endpoint or ENDPOINT
    path = f"/{bucket}"
    if key:
        path += "/" + quote(key, safe="/~")
    return base + path


def raw_request(
    method: str, url: str, headers: dict | None = None, body: bytes = b"", timeout: float = 60
) -> RawResponse:
    """Send one HTTP request exactly as given (no signing, no normalisation)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    target = u.path or "/"
    if u.query:
        target += "?" + u.query
    try:
        hdrs = dict(headers or {})
        if body and not any(k.lower() == "content-length" for k in hdrs):
            hdrs["Content-Length"] = str(len(body))
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        if not any(k.lower() == "host" for k in hdrs):
            conn.putheader("Host", u.netloc)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def sign(
    method: str,
    url: str,
    access: str,
    secret: str,
    body: bytes = b"",
    headers: dict | None = None,
) -> dict:
    """SigV4-sign a request with botocore and return the headers to send (Host included)."""
    u = urlsplit(url)
    hdrs = {"Host": u.netloc, **(headers or {})}
    req = AWSRequest(method=method, url=url, data=body, headers=hdrs)
    S3SigV4Auth(Credentials(access, secret), "s3", REGION).add_auth(req)
    return dict(req.headers.items())


def signed_request(
    method: str,
    url: str,
    access: str | None = None,
    secret: str | None = None,
    body: bytes = b"",
    headers: dict | None = None,
) -> RawResponse:
    hdrs = sign(method, url, access or ACCESS_KEY, secret or SECRET_KEY, body, headers)
    return raw_request(method, url, hdrs, body)


def expect_100_continue(url: str, headers: dict, body: bytes, wait: float = 2.0) -> tuple[RawResponse, bool]:
    """PUT with `Expect: 100-continue` like a careful client: send the head, wait for
    `100 Continue` (or a final answer) and only then the body. Returns (response, body_sent)."""
    u = urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=30)
    try:
        target = u.path + ("?" + u.query if u.query else "")
        lines = [f"PUT {target} HTTP/1.1"]
        hdrs = dict(headers)
        hdrs["Expect"] = "100-continue"
        hdrs["Content-Length"] = str(len(body))
        lines += [f"{k}: {v}" for k, v in hdrs.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        sock.settimeout(wait)
        try:
            first = sock.recv(12, socket.MSG_PEEK)
        except socket.timeout:
            first = b""  # server said nothing: RFC 9110 lets the client send the body anyway
        sock.settimeout(30)
        body_sent = False
        if first == b"" or first.split(b" ")[1:2] == [b"100"]:
            try:
                sock.sendall(body)
                body_sent = True
            except (BrokenPipeError, ConnectionResetError):
                pass
        resp = http.client.HTTPResponse(sock, method="PUT")  # skips interim 100 responses
        resp.begin()
        data = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data), body_sent
    finally:
        sock.close()


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def http_status(exc_or_resp) -> int:
    r = exc_or_resp.response if isinstance(exc_or_resp, ClientError) else exc_or_resp
    return r["ResponseMetadata"]["HTTPStatusCode"]


def sha256_of_stream(body, chunk: int = MiB) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    for c in body.iter_chunks(chunk):
        h.update(c)
        n += len(c)
    return h.hexdigest(), n


def aws_cli_command() -> list[str] | None:
    """aws-cli run by this interpreter, whose packages test/install.sh installed (awscrt among
    them); an `aws` found on PATH may belong to another Python that lacks them."""
    if importlib.util.find_spec("awscli") is None:
        return None
    return [sys.executable, "-m", "awscli"]


def aws_cli_env(config_dir, **extra: str) -> dict[str, str]:
    """Environment for the `aws` command: path-style, the test keys, no credentials file, one attempt."""
    cfg = config_dir / "config"
    # aws-cli v1 reads the s3 addressing style from a nested section of the profile
    cfg.write_text("[default]\ns3 =\n    addressing_style = path\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(cfg),
        AWS_SHARED_CREDENTIALS_FILE=str(config_dir / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
        AWS_PAGER="",
        # botocore adds `Expect: 100-continue` to every PutObject with a file body. For an empty
        # file the server answers 200 at once, botocore keeps that early status line in the
        # connection's response class, and the next Expect request on the same keep-alive
        # connection is mis-parsed and hangs until the server closes the connection (seen with
        # bare MinIO: 30 s stalls in `aws s3 sync` with an empty file). This is botocore's own
        # switch to not send Expect for empty bodies; the bug is in the client, not in osp.
        BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE="true",
        **extra,
    )
    return env
