"""Signature Version 2 from real clients: boto3's default presigned URLs, boto3 signing with
signature_version="s3", and s3cmd. osp verifies V2 and re-signs upstream with SigV4."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from s3util import ACCESS_KEY, ENDPOINT, REGION, SECRET_KEY, error_code, raw_request

S3CMD = os.path.join(sysconfig.get_path("scripts"), "s3cmd")


def _client(signature_version: str | None = None, secret: str = SECRET_KEY):
    # no signature_version: what boto3 does by default, which presigns with SigV2 for a custom endpoint
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, signature_version=signature_version)
    return boto3.session.Session().client(
        "s3", endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret, config=config
    )


def _with_query(url: str, **changes) -> str:
    u = urlsplit(url)
    q = [(k, changes.pop(k) if k in changes else v) for k, v in parse_qsl(u.query, keep_blank_values=True)]
    return urlunsplit((u.scheme, u.netloc, u.path, urlencode(q + list(changes.items())), ""))


def test_boto3_default_presigned_urls_are_v2_and_work(target, prefix):
    client = _client()
    key = prefix + "v2 presigned ü.bin"
    data = os.urandom(70_000)
    put_url = client.generate_presigned_url("put_object", Params={"Bucket": target.bucket, "Key": key}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in put_url and "Signature=" in put_url and "X-Amz-" not in put_url
    assert raw_request("PUT", put_url, body=data).status == 200
    assert target.backend_get(key) == data

    get_url = client.generate_presigned_url(
        "get_object", Params={"Bucket": target.bucket, "Key": key, "ResponseContentType": "text/x-v2"}, ExpiresIn=300
    )
    r = raw_request("GET", get_url)
    assert r.status == 200 and r.body == data
    assert r.headers.get("content-type") == "text/x-v2"


def test_v2_presigned_refusals_write_nothing(target, prefix):
    client = _client()
    key = prefix + "v2-refused.txt"
    put_url = client.generate_presigned_url("put_object", Params={"Bucket": target.bucket, "Key": key}, ExpiresIn=300)
    cases = {
        "another key": (put_url.replace("v2-refused", "v2-other"), "SignatureDoesNotMatch"),
        "a later expiry": (_with_query(put_url, Expires=str(int(time.time()) + 3000)), "SignatureDoesNotMatch"),
        "a second signature": (put_url + "&Signature=AAAA", "AuthorizationQueryParametersError"),
        "an added subresource": (put_url + "&tagging", "SignatureDoesNotMatch"),
        "a parameter V2 leaves unsigned": (put_url + "&object-lock", "AccessDenied"),
    }
    for why, (url, code) in cases.items():
        r = raw_request("PUT", url, body=b"nope")
        assert r.xml_code() == code, (why, r.status, r.body)
    r = raw_request("PUT", put_url, body=b"nope", headers={"x-amz-meta-added": "1"})
    assert (r.status, r.xml_code()) == (403, "SignatureDoesNotMatch"), r.body

    late = client.generate_presigned_url("put_object", Params={"Bucket": target.bucket, "Key": key}, ExpiresIn=1)
    time.sleep(2.1)
    r = raw_request("PUT", late, body=b"nope")
    assert (r.status, r.xml_code()) == (403, "AccessDenied") and "expired" in (r.xml_message() or "").lower()
    assert not target.backend_exists(key)
    assert not target.backend_exists(prefix + "v2-other.txt")


def test_boto3_signing_every_request_with_v2(target, prefix):
    client = _client("s3")
    key = prefix + "v2 header+auth.bin"
    data = os.urandom(1 << 20)
    client.put_object(Bucket=target.bucket, Key=key, Body=data, ContentType="application/x-v2", Metadata={"origin": "v2"}, Tagging="sig=v2")
    assert target.backend_get(key) == data
    head = target.backend_head(key)
    assert (head["ContentType"], head["Metadata"]) == ("application/x-v2", {"origin": "v2"})
    assert target.backend.get_object_tagging(Bucket=target.backend_bucket, Key=key)["TagSet"] == [{"Key": "sig", "Value": "v2"}]
    assert client.get_object(Bucket=target.bucket, Key=key, Range="bytes=10-19")["Body"].read() == data[10:20]
    listed = client.list_objects(Bucket=target.bucket, Prefix=prefix)
    assert [o["Key"] for o in listed["Contents"]] == [key]
    client.delete_object(Bucket=target.bucket, Key=key)
    assert not target.backend_exists(key)

    with pytest.raises(ClientError) as e:
        _client("s3", secret=SECRET_KEY + "x").put_object(Bucket=target.bucket, Key=key, Body=b"x")
    assert error_code(e.value) == "SignatureDoesNotMatch"
    assert not target.backend_exists(key)


@pytest.fixture(scope="module")
def s3cmd_config(tmp_path_factory):
    host = urlsplit(ENDPOINT).netloc
    path = tmp_path_factory.mktemp("s3cmd") / "s3cfg"
    path.write_text(
        "[default]\n"
        f"access_key = {ACCESS_KEY}\nsecret_key = {SECRET_KEY}\n"
        f"host_base = {host}\nhost_bucket = {host}\n"
        "use_https = False\nsignature_v2 = True\nbucket_location = us-east-1\n"
    )
    return str(path)


def _s3cmd(config: str, *args: str) -> subprocess.CompletedProcess:
    # run by this interpreter, whose packages test/install.sh installed
    return subprocess.run([sys.executable, S3CMD, "-c", config, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not os.path.exists(S3CMD), reason="s3cmd is not installed for this Python")
def test_s3cmd_with_v2_signatures(target, prefix, s3cmd_config, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300_000))
    uri = f"s3://{target.bucket}/{prefix}s3cmd.bin"
    put = _s3cmd(s3cmd_config, "put", str(src), uri)
    assert put.returncode == 0, put.stderr
    assert target.backend_get(prefix + "s3cmd.bin") == src.read_bytes()
    got = tmp_path / "got.bin"
    get = _s3cmd(s3cmd_config, "get", uri, str(got))
    assert get.returncode == 0, get.stderr
    assert got.read_bytes() == src.read_bytes()
    ls = _s3cmd(s3cmd_config, "ls", f"s3://{target.bucket}/{prefix}")
    assert ls.returncode == 0 and uri in ls.stdout, ls.stderr

    # s3cmd's signed URLs are always SigV2
    signed = _s3cmd(s3cmd_config, "signurl", uri, "+300")
    assert signed.returncode == 0, signed.stderr
    url = signed.stdout.strip()
    assert "Signature=" in url
    r = raw_request("GET", url)
    assert r.status == 200 and r.body == src.read_bytes()
    r = raw_request("GET", url.replace("s3cmd.bin", "s3cmd.bim"))
    assert (r.status, r.xml_code()) == (403, "SignatureDoesNotMatch")
