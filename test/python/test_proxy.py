"""Proxy-only behaviour: per-key bucket limits, bucket renaming, unreachable backends, raw paths.
These tests skip when the proxy-specific variables are not set (e.g. against bare MinIO)."""

from __future__ import annotations

import os
import re
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from s3util import (
    BUCKET_A,
    BUCKET_B,
    BUCKET_B_BACKEND,
    BUCKET_DOWN,
    ENDPOINT,
    LIMITED_ACCESS_KEY,
    LIMITED_SECRET_KEY,
    error_code,
    expect_100_continue,
    http_status,
    needs_down,
    needs_limited,
    obj_url,
    raw_request,
    sign,
    signed_request,
)

SECRET = b"BETA-ONLY-SECRET-CONTENT"


def _denied(exc: ClientError):
    assert error_code(exc) == "AccessDenied", exc.response["Error"]
    assert http_status(exc) == 403


@pytest.fixture
def beta_secret(osp, target_b, prefix):
    key = prefix + "secret.txt"
    osp.put_object(Bucket=BUCKET_B, Key=key, Body=SECRET)
    return key


# ------------------------------------------------------------------ limited key


@needs_limited
def test_limited_key_works_on_alpha(limited, target_a, prefix):
    key = prefix + "limited ü.txt"
    limited.put_object(Bucket=BUCKET_A, Key=key, Body=b"mine")
    assert target_a.backend_get(key) == b"mine"
    assert limited.get_object(Bucket=BUCKET_A, Key=key)["Body"].read() == b"mine"
    listed = limited.list_objects_v2(Bucket=BUCKET_A, Prefix=prefix)
    assert [o["Key"] for o in listed["Contents"]] == [key]
    limited.delete_object(Bucket=BUCKET_A, Key=key)
    assert not target_a.backend_exists(key)


@needs_limited
def test_limited_key_denied_on_beta(limited, target_b, prefix, beta_secret):
    with pytest.raises(ClientError) as ei:
        limited.get_object(Bucket=BUCKET_B, Key=beta_secret)
    _denied(ei.value)
    with pytest.raises(ClientError) as ei:
        limited.head_object(Bucket=BUCKET_B, Key=beta_secret)
    assert http_status(ei.value) == 403
    with pytest.raises(ClientError) as ei:
        limited.list_objects_v2(Bucket=BUCKET_B, Prefix=prefix)
    _denied(ei.value)
    with pytest.raises(ClientError) as ei:
        limited.list_objects(Bucket=BUCKET_B)
    _denied(ei.value)
    with pytest.raises(ClientError) as ei:
        limited.put_object(Bucket=BUCKET_B, Key=prefix + "intruder.txt", Body=b"x")
    _denied(ei.value)
    with pytest.raises(ClientError) as ei:
        limited.delete_object(Bucket=BUCKET_B, Key=beta_secret)
    _denied(ei.value)
    with pytest.raises(ClientError) as ei:
        limited.delete_objects(Bucket=BUCKET_B, Delete={"Objects": [{"Key": beta_secret}]})
    _denied(ei.value)
    with pytest.raises(ClientError) as ei:
        limited.create_multipart_upload(Bucket=BUCKET_B, Key=prefix + "mp")
    _denied(ei.value)
    with pytest.raises(ClientError) as ei:
        limited.get_object_tagging(Bucket=BUCKET_B, Key=beta_secret)
    _denied(ei.value)

    # raw: S3 XML, nothing of the object in the body
    r = signed_request("GET", obj_url(BUCKET_B, beta_secret), LIMITED_ACCESS_KEY, LIMITED_SECRET_KEY)
    assert r.status == 403 and r.xml_code() == "AccessDenied", r.body
    assert SECRET not in r.body

    assert target_b.backend_keys(prefix) == [beta_secret]
    assert target_b.backend_get(beta_secret) == SECRET


@needs_limited
def test_limited_key_presigned_beta_denied(limited, beta_secret):
    url = limited.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET_B, "Key": beta_secret}, ExpiresIn=60
    )
    r = raw_request("GET", url)
    assert r.status == 403 and r.xml_code() == "AccessDenied", r.body
    assert SECRET not in r.body


@needs_limited
def test_limited_key_cannot_copy_out_of_beta(limited, target_a, target_b, prefix, beta_secret):
    """The copy *source* must be authorized too, or CopyObject leaks any bucket into alpha."""
    dst = prefix + "stolen.txt"
    with pytest.raises(ClientError) as ei:
        limited.copy_object(Bucket=BUCKET_A, Key=dst, CopySource={"Bucket": BUCKET_B, "Key": beta_secret})
    _denied(ei.value)
    assert target_a.backend_keys(prefix) == []

    up = limited.create_multipart_upload(Bucket=BUCKET_A, Key=dst)["UploadId"]
    try:
        with pytest.raises(ClientError) as ei:
            limited.upload_part_copy(
                Bucket=BUCKET_A,
                Key=dst,
                UploadId=up,
                PartNumber=1,
                CopySource={"Bucket": BUCKET_B, "Key": beta_secret},
            )
        _denied(ei.value)
        assert limited.list_parts(Bucket=BUCKET_A, Key=dst, UploadId=up).get("Parts", []) == []
    finally:
        limited.abort_multipart_upload(Bucket=BUCKET_A, Key=dst, UploadId=up)
    assert target_a.backend_keys(prefix) == []


@needs_limited
def test_limited_key_copy_source_by_backend_name(limited, target_a, prefix, beta_secret):
    """Naming the backend bucket (beta-real) as copy source must not bypass the limit either."""
    if BUCKET_B_BACKEND == BUCKET_B:
        pytest.skip("bucket B has the same name on its backend")
    dst = prefix + "stolen2.txt"
    with pytest.raises(ClientError) as ei:
        limited.copy_object(
            Bucket=BUCKET_A, Key=dst, CopySource={"Bucket": BUCKET_B_BACKEND, "Key": beta_secret}
        )
    assert http_status(ei.value) in (403, 404), ei.value.response
    assert target_a.backend_keys(prefix) == []


@needs_limited
def test_limited_key_expect_100_continue_on_beta(target_b, prefix):
    """Authorization, not only authentication, comes before `100 Continue`."""
    url = obj_url(BUCKET_B, prefix + "expect.bin")
    body = os.urandom(32 * 1024)
    headers = sign(
        "PUT", url, LIMITED_ACCESS_KEY, LIMITED_SECRET_KEY, body=body, headers={"Expect": "100-continue"}
    )
    r, sent = expect_100_continue(url, headers, body)
    assert r.status == 403 and r.xml_code() == "AccessDenied", (r.status, r.body)
    assert not sent
    assert target_b.backend_keys(prefix) == []


@needs_limited
def test_limited_key_list_buckets(limited):
    names = [b["Name"] for b in limited.list_buckets()["Buckets"]]
    assert names == [BUCKET_A]


@needs_limited
@pytest.mark.parametrize(
    "path_tpl",
    [
        "/{a}/../{b}/{key}",
        "/{a}/%2e%2e/{b}/{key}",
        "/{a}/%2E%2E/{b}/{key}",
        "/{a}/./../{b}/{key}",
        "/{a}/..%2F{b}/{key}",
        "/{a}\\..\\{b}/{key}",
    ],
)
def test_limited_key_path_traversal(target_b, beta_secret, path_tpl):
    """Dot segments in the raw path must never turn an alpha request into a beta one: osp has to
    authorize and forward the raw request target (S3 keys may contain '..'), not a normalised URL."""
    path = path_tpl.format(a=BUCKET_A, b=BUCKET_B, key=quote(beta_secret, safe="/"))
    r = signed_request("GET", ENDPOINT + path, LIMITED_ACCESS_KEY, LIMITED_SECRET_KEY)
    assert SECRET not in r.body, (path, r.status)
    assert r.status != 200 or r.body != SECRET
    assert r.status in (400, 403, 404), (path, r.status, r.body)
    assert r.xml_code(), r.body


def test_dot_segment_key_is_not_resolved(osp, target_a, target_b, prefix, beta_secret):
    """Admin GET /alpha/x/../<secret key>: either the literal key in alpha (missing) or an error,
    never beta's object or an alpha object at a resolved path."""
    osp.put_object(Bucket=BUCKET_A, Key=prefix + "secret.txt", Body=b"alpha-version")
    r = signed_request("GET", obj_url(BUCKET_A) + "/" + quote(prefix, safe="/") + "sub/../secret.txt")
    assert r.status in (400, 404), (r.status, r.body)
    assert SECRET not in r.body and b"alpha-version" not in r.body


# ------------------------------------------------------------------ bucket renaming


def test_backend_bucket_name_not_leaked(osp, target_b, prefix):
    """beta is beta-real on its backend; what clients see should say beta."""
    if BUCKET_B_BACKEND == BUCKET_B:
        pytest.skip("bucket B has the same name on its backend")
    key = prefix + "named.txt"
    osp.put_object(Bucket=BUCKET_B, Key=key, Body=b"n")
    up = osp.create_multipart_upload(Bucket=BUCKET_B, Key=prefix + "mp.bin")["UploadId"]
    part = osp.upload_part(Bucket=BUCKET_B, Key=prefix + "mp.bin", UploadId=up, PartNumber=1, Body=b"p")
    qp = quote(prefix, safe="")
    base = obj_url(BUCKET_B)
    leaks = {}
    checks = {
        "ListObjectsV2": ("GET", f"{base}?list-type=2&prefix={qp}", b""),
        "ListObjects": ("GET", f"{base}?prefix={qp}", b""),
        "ListMultipartUploads": ("GET", f"{base}?uploads", b""),
        "ListParts": ("GET", f"{obj_url(BUCKET_B, prefix + 'mp.bin')}?uploadId={quote(up, safe='')}", b""),
        "GetObject(missing) error": ("GET", obj_url(BUCKET_B, prefix + "missing"), b""),
    }
    for name, (method, url, body) in checks.items():
        r = signed_request(method, url, body=body)
        assert r.status in (200, 404), (name, r.status, r.body)
        if BUCKET_B_BACKEND.encode() in r.body:
            leaks[name] = re.findall(
                rb"<[^<>]*>[^<>]*" + re.escape(BUCKET_B_BACKEND.encode()) + rb"[^<>]*<", r.body
            )
    create = osp.create_multipart_upload(Bucket=BUCKET_B, Key=prefix + "mp2.bin")
    if create.get("Bucket") != BUCKET_B:
        leaks["CreateMultipartUpload.Bucket"] = create.get("Bucket")
    osp.abort_multipart_upload(Bucket=BUCKET_B, Key=prefix + "mp2.bin", UploadId=create["UploadId"])
    done = osp.complete_multipart_upload(
        Bucket=BUCKET_B,
        Key=prefix + "mp.bin",
        UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    if done.get("Bucket") != BUCKET_B:
        leaks["CompleteMultipartUpload.Bucket"] = done.get("Bucket")
    if BUCKET_B_BACKEND in (done.get("Location") or ""):
        leaks["CompleteMultipartUpload.Location"] = done.get("Location")
    names = {b["Name"] for b in osp.list_buckets()["Buckets"]}
    if BUCKET_B_BACKEND in names:
        leaks["ListBuckets"] = sorted(names)
    assert leaks == {}


# ------------------------------------------------------------------ backend down


@needs_down
def test_down_bucket_is_a_gateway_error():
    for method, url, body in (
        ("GET", obj_url(BUCKET_DOWN, "some/key.txt"), b""),
        ("GET", obj_url(BUCKET_DOWN) + "?list-type=2", b""),
        ("PUT", obj_url(BUCKET_DOWN, "new.txt"), b"data for nowhere"),
    ):
        r = signed_request(method, url, body=body)
        assert r.status in (502, 503, 504), (method, url, r.status, r.body)
        assert r.headers.get("content-type", "").startswith(("application/xml", "text/xml"))
        assert r.xml_code(), r.body


@needs_down
def test_down_bucket_boto3(osp):
    with pytest.raises(ClientError) as ei:
        osp.get_object(Bucket=BUCKET_DOWN, Key="k")
    assert http_status(ei.value) in (502, 503, 504)
    assert error_code(ei.value) not in ("", None)
    with pytest.raises(ClientError) as ei:
        osp.head_object(Bucket=BUCKET_DOWN, Key="k")
    assert http_status(ei.value) in (502, 503, 504)


@needs_down
@needs_limited
def test_down_bucket_limited_key_is_denied_first():
    r = signed_request("GET", obj_url(BUCKET_DOWN, "k"), LIMITED_ACCESS_KEY, LIMITED_SECRET_KEY)
    assert r.status == 403 and r.xml_code() == "AccessDenied", (r.status, r.body)


@needs_down
def test_down_bucket_does_not_hurt_others(osp, target_a, prefix):
    signed_request("GET", obj_url(BUCKET_DOWN, "k"))
    key = prefix + "still-fine.bin"
    data = os.urandom(1000)
    osp.put_object(Bucket=BUCKET_A, Key=key, Body=data)
    assert osp.get_object(Bucket=BUCKET_A, Key=key)["Body"].read() == data


def test_unknown_bucket_with_valid_key_names_no_backend(osp):
    """An unconfigured bucket is answered by osp itself, even if a backend has such a bucket."""
    if BUCKET_B_BACKEND == BUCKET_B:
        pytest.skip("bucket B has the same name on its backend")
    with pytest.raises(ClientError) as ei:
        osp.list_objects_v2(Bucket=BUCKET_B_BACKEND)
    assert error_code(ei.value) == "NoSuchBucket"
    assert http_status(ei.value) == 404
