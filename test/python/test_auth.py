"""Authentication and authorization at osp: every refusal is S3 XML with the right <Code> and
status, and a refused write leaves nothing behind on the backend."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import uuid

import botocore.auth
import botocore.crt.auth
import pytest
from botocore.exceptions import ClientError

from s3util import (
    ACCESS_KEY,
    BUCKET_A,
    BUCKET_B,
    BUCKET_DOWN,
    ENDPOINT,
    SECRET_KEY,
    error_code,
    expect_100_continue,
    http_status,
    make_client,
    obj_url,
    raw_request,
    sign,
    signed_request,
)


def assert_s3_error(r, status: int, code: str):
    assert r.status == status, (r.status, r.body)
    assert r.headers.get("content-type", "").startswith(("application/xml", "text/xml")), r.headers
    assert r.xml_code() == code, r.body


@pytest.fixture
def existing(osp, target, prefix):
    key = prefix + "existing.txt"
    osp.put_object(Bucket=target.bucket, Key=key, Body=b"TOP-SECRET-BYTES")
    return key


# ------------------------------------------------------------------ signature / key problems


def test_wrong_secret(target, existing):
    bad = make_client(ENDPOINT, ACCESS_KEY, SECRET_KEY + "x")
    with pytest.raises(ClientError) as ei:
        bad.get_object(Bucket=target.bucket, Key=existing)
    assert error_code(ei.value) == "SignatureDoesNotMatch"
    assert http_status(ei.value) == 403

    r = signed_request("GET", obj_url(target.bucket, existing), ACCESS_KEY, SECRET_KEY + "x")
    assert_s3_error(r, 403, "SignatureDoesNotMatch")
    assert b"TOP-SECRET-BYTES" not in r.body


def test_wrong_secret_list(target):
    bad = make_client(ENDPOINT, ACCESS_KEY, "not-the-secret")
    with pytest.raises(ClientError) as ei:
        bad.list_objects_v2(Bucket=target.bucket)
    assert error_code(ei.value) == "SignatureDoesNotMatch"
    assert http_status(ei.value) == 403


def test_unknown_access_key(target, existing):
    unknown = "AKIA" + uuid.uuid4().hex[:16].upper()
    bad = make_client(ENDPOINT, unknown, SECRET_KEY)
    with pytest.raises(ClientError) as ei:
        bad.get_object(Bucket=target.bucket, Key=existing)
    assert error_code(ei.value) == "InvalidAccessKeyId"
    assert http_status(ei.value) == 403

    r = signed_request("GET", obj_url(target.bucket, existing), unknown, SECRET_KEY)
    assert_s3_error(r, 403, "InvalidAccessKeyId")


def test_no_auth_at_all(target, existing):
    r = raw_request("GET", obj_url(target.bucket, existing))
    assert_s3_error(r, 403, "AccessDenied")
    assert b"TOP-SECRET-BYTES" not in r.body

    r = raw_request("GET", obj_url(target.bucket) + "?list-type=2")
    assert_s3_error(r, 403, "AccessDenied")
    assert existing.encode() not in r.body


def test_no_auth_put_writes_nothing(target, prefix):
    r = raw_request("PUT", obj_url(target.bucket, prefix + "anon.txt"), body=b"anonymous")
    assert_s3_error(r, 403, "AccessDenied")
    assert target.backend_keys(prefix) == []


def test_anonymous_list_buckets():
    r = raw_request("GET", ENDPOINT + "/")
    assert_s3_error(r, 403, "AccessDenied")
    for name in (BUCKET_A, BUCKET_B):
        assert f"<Name>{name}</Name>".encode() not in r.body
        assert f">{name}<".encode() not in r.body


@contextlib.contextmanager
def clock_off_by(delta: dt.timedelta):
    """botocore signs as if the clock were off by `delta` (only inside the block). With awscrt
    installed, S3 requests are signed by botocore.crt.auth, which imported the clock by name."""
    modules = [botocore.auth, botocore.crt.auth]
    real = botocore.auth.get_current_datetime
    for m in modules:
        m.get_current_datetime = lambda *a, **kw: real(*a, **kw) + delta
    try:
        yield
    finally:
        for m in modules:
            m.get_current_datetime = real


@pytest.mark.parametrize("minutes", [-20, 20], ids=["past", "future"])
def test_clock_skew(target, existing, prefix, minutes):
    skewed = make_client(ENDPOINT, ACCESS_KEY, SECRET_KEY)
    with clock_off_by(dt.timedelta(minutes=minutes)):
        r = signed_request("GET", obj_url(target.bucket, existing))
        with pytest.raises(ClientError) as ei:
            skewed.put_object(Bucket=target.bucket, Key=prefix + "skewed.txt", Body=b"late")
    assert_s3_error(r, 403, "RequestTimeTooSkewed")
    assert b"TOP-SECRET-BYTES" not in r.body
    assert error_code(ei.value) == "RequestTimeTooSkewed"
    assert http_status(ei.value) == 403
    assert not target.backend_exists(prefix + "skewed.txt")


def test_small_clock_skew_is_fine(target, existing):
    with clock_off_by(dt.timedelta(minutes=-5)):
        r = signed_request("GET", obj_url(target.bucket, existing))
    assert r.status == 200 and r.body == b"TOP-SECRET-BYTES"


def test_put_with_wrong_secret_writes_nothing(target, prefix):
    key = prefix + "forged.bin"
    bad = make_client(ENDPOINT, ACCESS_KEY, "wrong-" + SECRET_KEY)
    with pytest.raises(ClientError) as ei:
        bad.put_object(Bucket=target.bucket, Key=key, Body=os.urandom(256 * 1024))
    assert error_code(ei.value) == "SignatureDoesNotMatch"
    assert http_status(ei.value) == 403
    assert target.backend_keys(prefix) == []

    # multipart with a forged signature: nothing is started on the backend
    with pytest.raises(ClientError) as ei:
        bad.create_multipart_upload(Bucket=target.bucket, Key=key)
    assert error_code(ei.value) == "SignatureDoesNotMatch"


def test_forged_upload_part_and_complete(osp, target, prefix):
    """A valid upload id does not make a forged UploadPart / CompleteMultipartUpload acceptable."""
    key = prefix + "mp-forged.bin"
    up = osp.create_multipart_upload(Bucket=target.bucket, Key=key)["UploadId"]
    bad = make_client(ENDPOINT, ACCESS_KEY, "wrong-" + SECRET_KEY)
    with pytest.raises(ClientError) as ei:
        bad.upload_part(Bucket=target.bucket, Key=key, UploadId=up, PartNumber=1, Body=b"evil")
    assert error_code(ei.value) == "SignatureDoesNotMatch"
    assert osp.list_parts(Bucket=target.bucket, Key=key, UploadId=up).get("Parts", []) == []
    with pytest.raises(ClientError) as ei:
        bad.abort_multipart_upload(Bucket=target.bucket, Key=key, UploadId=up)
    assert error_code(ei.value) == "SignatureDoesNotMatch"
    osp.abort_multipart_upload(Bucket=target.bucket, Key=key, UploadId=up)


def test_payload_hash_mismatch_writes_nothing(target, prefix):
    """Signed x-amz-content-sha256 of one body, another body of the same length on the wire."""
    key = prefix + "swapped.bin"
    url = obj_url(target.bucket, key)
    signed_body = b"A" * 1024
    sent_body = b"B" * 1024
    headers = sign("PUT", url, ACCESS_KEY, SECRET_KEY, body=signed_body)
    assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(signed_body).hexdigest()
    r = raw_request("PUT", url, headers, sent_body)
    assert r.status == 400, (r.status, r.body)
    assert r.xml_code() in ("XAmzContentSHA256Mismatch", "BadDigest"), r.body
    assert target.backend_keys(prefix) == []


def test_tampered_header_after_signing(target, prefix):
    key = prefix + "hdr.txt"
    url = obj_url(target.bucket, key)
    headers = sign("PUT", url, ACCESS_KEY, SECRET_KEY, body=b"x", headers={"x-amz-meta-who": "alice"})
    headers["x-amz-meta-who"] = "mallory"
    r = raw_request("PUT", url, headers, b"x")
    assert_s3_error(r, 403, "SignatureDoesNotMatch")
    assert target.backend_keys(prefix) == []


# ------------------------------------------------------------------ Expect: 100-continue


def test_expect_100_continue_bad_signature_writes_nothing(target, prefix):
    key = prefix + "expect-bad.bin"
    url = obj_url(target.bucket, key)
    body = os.urandom(64 * 1024)
    headers = sign("PUT", url, ACCESS_KEY, "wrong-secret", body=body, headers={"Expect": "100-continue"})
    r, sent = expect_100_continue(url, headers, body)
    assert_s3_error(r, 403, "SignatureDoesNotMatch")
    # the refusal comes instead of `100 Continue`: the client never had to send the body
    assert not sent
    assert target.backend_keys(prefix) == []

    unknown = sign(
        "PUT", url, "AKIANOBODY0000000000", SECRET_KEY, body=body, headers={"Expect": "100-continue"}
    )
    r, sent = expect_100_continue(url, unknown, body)
    assert_s3_error(r, 403, "InvalidAccessKeyId")
    assert not sent
    assert target.backend_keys(prefix) == []


def test_expect_100_continue_good_signature(target, prefix):
    key = prefix + "expect-good.bin"
    url = obj_url(target.bucket, key)
    body = os.urandom(64 * 1024)
    headers = sign("PUT", url, ACCESS_KEY, SECRET_KEY, body=body, headers={"Expect": "100-continue"})
    r, sent = expect_100_continue(url, headers, body)
    assert r.status == 200, r.body
    assert sent
    assert target.backend_get(key) == body


# ------------------------------------------------------------------ buckets


def test_unknown_bucket(osp):
    name = "no-such-bucket-" + uuid.uuid4().hex[:12]
    with pytest.raises(ClientError) as ei:
        osp.get_object(Bucket=name, Key="k")
    assert error_code(ei.value) == "NoSuchBucket"
    assert http_status(ei.value) == 404
    with pytest.raises(ClientError) as ei:
        osp.list_objects_v2(Bucket=name)
    assert error_code(ei.value) == "NoSuchBucket"
    r = signed_request("PUT", obj_url(name, "k"), body=b"x")
    assert_s3_error(r, 404, "NoSuchBucket")


def test_admin_list_buckets(osp):
    names = {b["Name"] for b in osp.list_buckets()["Buckets"]}
    # a bucket whose backend does not answer cannot be shown to exist, so "down" is left out
    assert {BUCKET_A, BUCKET_B} <= names, names
    assert BUCKET_DOWN not in names
