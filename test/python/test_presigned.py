"""Presigned URLs made by boto3 for osp, used with a plain HTTP client (no signing)."""

from __future__ import annotations

import os
import time
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from s3util import ACCESS_KEY, ENDPOINT, MINIO_PASSWORD, MINIO_USER, REGION, SECRET_KEY, raw_request


def _presign(osp, method: str, bucket: str, key: str, expires: int = 300, **params):
    return osp.generate_presigned_url(
        method, Params={"Bucket": bucket, "Key": key, **params}, ExpiresIn=expires
    )


def _with_query(url: str, **changes) -> str:
    u = urlsplit(url)
    q = [(k, changes.pop(k) if k in changes else v) for k, v in parse_qsl(u.query, keep_blank_values=True)]
    q += list(changes.items())
    return urlunsplit((u.scheme, u.netloc, u.path, urlencode(q), ""))


def test_presigned_get(osp, target, prefix):
    key = prefix + "pre get ü+.bin"
    data = os.urandom(4096)
    osp.put_object(Bucket=target.bucket, Key=key, Body=data)
    url = _presign(osp, "get_object", target.bucket, key)
    r = raw_request("GET", url)
    assert r.status == 200, r.body
    assert r.body == data
    assert r.headers["content-length"] == str(len(data))

    # HEAD with a URL presigned for HEAD
    r = raw_request("HEAD", _presign(osp, "head_object", target.bucket, key))
    assert r.status == 200
    assert r.headers["content-length"] == str(len(data))


def test_presigned_get_response_overrides(osp, target, prefix):
    key = prefix + "report.csv"
    osp.put_object(Bucket=target.bucket, Key=key, Body=b"a,b\n1,2\n", ContentType="text/csv")
    url = _presign(
        osp,
        "get_object",
        target.bucket,
        key,
        ResponseContentDisposition='attachment; filename="renamed report.csv"',
        ResponseContentType="application/octet-stream",
        ResponseCacheControl="no-store",
    )
    r = raw_request("GET", url)
    assert r.status == 200, r.body
    assert r.body == b"a,b\n1,2\n"
    assert r.headers["content-disposition"] == 'attachment; filename="renamed report.csv"'
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["cache-control"] == "no-store"


def test_presigned_put(osp, target, prefix):
    key = prefix + "pre put ü+.bin"
    data = os.urandom(100_000)
    url = _presign(osp, "put_object", target.bucket, key)
    r = raw_request("PUT", url, body=data)
    assert r.status == 200, r.body
    assert target.backend_get(key) == data
    assert osp.get_object(Bucket=target.bucket, Key=key)["Body"].read() == data


def test_presigned_delete(osp, target, prefix):
    key = prefix + "pre-delete.txt"
    osp.put_object(Bucket=target.bucket, Key=key, Body=b"bye")
    r = raw_request("DELETE", _presign(osp, "delete_object", target.bucket, key))
    assert r.status == 204, r.body
    assert not target.backend_exists(key)


def test_presigned_tampered(osp, target, prefix):
    key, other = prefix + "signed.txt", prefix + "other.txt"
    osp.put_object(Bucket=target.bucket, Key=key, Body=b"SECRET-CONTENT-1")
    osp.put_object(Bucket=target.bucket, Key=other, Body=b"SECRET-CONTENT-2")
    url = _presign(osp, "get_object", target.bucket, key)

    tampered = [
        url.replace("/signed.txt?", "/other.txt?"),  # path
        _with_query(url, **{"X-Amz-Expires": "600"}),  # a signed query parameter
        _with_query(url, **{"response-content-type": "text/html"}),  # an added parameter
    ]
    for bad in tampered:
        assert bad != url
        r = raw_request("GET", bad)
        assert r.status == 403, (bad, r.status, r.body)
        assert r.xml_code() == "SignatureDoesNotMatch", (bad, r.body)
        assert b"SECRET-CONTENT" not in r.body

    # a presigned PUT whose path was changed writes nothing
    put_url = _presign(osp, "put_object", target.bucket, prefix + "intended.txt")
    r = raw_request("PUT", put_url.replace("/intended.txt?", "/hijacked.txt?"), body=b"evil")
    assert r.status == 403 and r.xml_code() == "SignatureDoesNotMatch", r.body
    assert sorted(target.backend_keys(prefix)) == sorted([key, other])


def test_presigned_expired(osp, target, prefix):
    key = prefix + "expiring.txt"
    osp.put_object(Bucket=target.bucket, Key=key, Body=b"soon gone")
    url = _presign(osp, "get_object", target.bucket, key, expires=1)
    put_url = _presign(osp, "put_object", target.bucket, prefix + "late.txt", expires=1)
    time.sleep(2.1)
    r = raw_request("GET", url)
    assert r.status == 403, r.body
    assert r.xml_code() == "AccessDenied"
    assert "expired" in (r.xml_message() or "").lower()
    assert b"soon gone" not in r.body

    r = raw_request("PUT", put_url, body=b"too late")
    assert r.status == 403 and r.xml_code() == "AccessDenied", r.body
    assert not target.backend_exists(prefix + "late.txt")


def _presign_zero(endpoint: str, access_key: str, secret_key: str, bucket: str, key: str) -> str:
    # botocore's CRT signer refuses ExpiresIn=0; its pure-Python signer makes the URL as S3 defines it
    request = AWSRequest(method="PUT", url=f"{endpoint}/{bucket}/{quote(key)}")
    S3SigV4QueryAuth(Credentials(access_key, secret_key), "s3", REGION, expires=0).add_auth(request)
    return request.url


def test_presigned_zero_expiry(target, prefix):
    # X-Amz-Expires=0 is valid syntax for a URL that is expired at once: 403, as S3 and MinIO answer
    key = prefix + "zero.txt"
    r = raw_request("PUT", _presign_zero(ENDPOINT, ACCESS_KEY, SECRET_KEY, target.bucket, key), body=b"never")
    assert r.status == 403 and r.xml_code() == "AccessDenied", r.body
    assert "expired" in (r.xml_message() or "").lower()
    assert not target.backend_exists(key)
    backend = target.backend.meta.endpoint_url
    direct = raw_request("PUT", _presign_zero(backend, MINIO_USER, MINIO_PASSWORD, target.backend_bucket, key), body=b"never")
    assert (direct.status, direct.xml_code()) == (r.status, r.xml_code())
