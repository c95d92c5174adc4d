"""Object CRUD through osp: sizes, awkward keys, metadata, tagging, ETags, DeleteObjects."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError
from botocore.handlers import validate_ascii_metadata

from s3util import (
    ACCESS_KEY,
    ENDPOINT,
    SECRET_KEY,
    MiB,
    error_code,
    make_client,
    http_status,
    metadata_text,
    obj_url,
    sha256_of_stream,
    signed_request,
    xml_all,
)


def _put_get_head_delete(osp, target, key: str, data: bytes):
    put = osp.put_object(Bucket=target.bucket, Key=key, Body=data)
    assert http_status(put) == 200

    # really landed on the backend, under the backend's bucket name
    assert target.backend_get(key) == data

    got = osp.get_object(Bucket=target.bucket, Key=key)
    assert http_status(got) == 200
    assert got["ResponseMetadata"]["HTTPHeaders"].get("content-length") == str(len(data))
    assert got["ContentLength"] == len(data)
    assert got["Body"].read() == data
    assert got["ETag"] == put["ETag"]

    head = osp.head_object(Bucket=target.bucket, Key=key)
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == put["ETag"]
    assert head["ETag"] == target.backend_head(key)["ETag"]

    dele = osp.delete_object(Bucket=target.bucket, Key=key)
    assert http_status(dele) == 204
    assert not target.backend_exists(key)
    with pytest.raises(ClientError) as ei:
        osp.get_object(Bucket=target.bucket, Key=key)
    assert error_code(ei.value) == "NoSuchKey"
    assert http_status(ei.value) == 404
    with pytest.raises(ClientError) as ei:
        osp.head_object(Bucket=target.bucket, Key=key)
    assert http_status(ei.value) == 404


@pytest.mark.parametrize("size", [0, 1, MiB], ids=["0B", "1B", "1MiB"])
def test_put_get_head_delete(osp, target, prefix, size):
    _put_get_head_delete(osp, target, f"{prefix}obj-{size}", os.urandom(size))


@pytest.mark.big
def test_put_get_100mib(osp, target, prefix, big_file):
    path, size, digest = big_file
    key = f"{prefix}big.bin"
    with open(path, "rb") as f:
        put = osp.put_object(Bucket=target.bucket, Key=key, Body=f)
    assert http_status(put) == 200

    bh = target.backend_head(key)
    assert bh["ContentLength"] == size
    assert bh["ETag"] == put["ETag"]
    back_digest, n = sha256_of_stream(
        target.backend.get_object(Bucket=target.backend_bucket, Key=key)["Body"]
    )
    assert (back_digest, n) == (digest, size)

    got = osp.get_object(Bucket=target.bucket, Key=key)
    assert got["ResponseMetadata"]["HTTPHeaders"].get("content-length") == str(size)
    assert sha256_of_stream(got["Body"]) == (digest, size)

    assert osp.head_object(Bucket=target.bucket, Key=key)["ContentLength"] == size
    osp.delete_object(Bucket=target.bucket, Key=key)
    assert not target.backend_exists(key)


# Keys that tend to break signing, routing or URL normalisation in proxies.
def _long_key(prefix: str) -> str:
    """A key of exactly 1024 bytes (the S3 maximum), in path segments of at most 200 bytes since
    MinIO stores objects as files and limits each path segment to 255 bytes."""
    key = prefix + "long"
    while 1024 - len(key.encode()) > 201:
        key += "/" + "k" * 199
    key += "/" + "z" * (1024 - len(key.encode()) - 1)
    assert len(key.encode()) == 1024
    return key


AWKWARD_KEYS = {
    "space": "with space/and  two  spaces.txt",
    "unicode": "ünïcödé/日本語.txt",
    "plus": "a+b+c.txt",
    "percent": "100%.txt",
    "pct2F": "literal%2Fnot-a-slash",
    "pct25": "pct%25twenty-five",
    "dotdot-like": "a..b/..c/d..",
    "punct": "~!@$&*()=:;,",
    "quote-bracket": "q'uote[br]{ac}e^`|",
    "long": None,  # built from the prefix
}


@pytest.mark.parametrize("name", list(AWKWARD_KEYS))
def test_awkward_keys_roundtrip(osp, target, prefix, name):
    key = _long_key(prefix) if name == "long" else prefix + AWKWARD_KEYS[name]
    data = f"payload of {name}".encode() + os.urandom(16)
    osp.put_object(Bucket=target.bucket, Key=key, Body=data)

    # the backend has exactly this key (no normalisation, no double decoding)
    assert target.backend_keys(prefix) == [key]
    assert target.backend_get(key) == data

    assert osp.get_object(Bucket=target.bucket, Key=key)["Body"].read() == data
    assert osp.head_object(Bucket=target.bucket, Key=key)["ContentLength"] == len(data)

    listed = osp.list_objects_v2(Bucket=target.bucket, Prefix=prefix)
    assert [o["Key"] for o in listed.get("Contents", [])] == [key]
    listed_v1 = osp.list_objects(Bucket=target.bucket, Prefix=prefix)
    assert [o["Key"] for o in listed_v1.get("Contents", [])] == [key]
    # boto3 always asks for encoding-type=url; a plain listing carries the key as XML text
    raw = signed_request("GET", obj_url(target.bucket) + "?list-type=2&prefix=" + quote(prefix, safe=""))
    assert raw.status == 200, raw.body
    assert xml_all(raw.body, "Key") == [key]

    osp.delete_object(Bucket=target.bucket, Key=key)
    assert target.backend_keys(prefix) == []


def test_double_slash_key(osp, target, prefix):
    """'a//b' must reach the backend as 'a//b', never collapsed to 'a/b' by osp: it ends as the same
    key as when sent to the backend directly. MinIO refuses '//' in object names
    (XMinioInvalidObjectName), and osp must pass on that refusal, not store 'a/b'; versitygw's
    posix store makes it 'a/b' itself."""
    key = prefix + "dbl//slash.txt"
    data = b"double slash"
    try:
        target.backend.put_object(Bucket=target.backend_bucket, Key=key + ".probe", Body=b"x")
        backend_accepts = True
    except ClientError as e:
        backend_accepts = False
        backend_code = error_code(e)

    if backend_accepts:
        [probe] = target.backend_keys(prefix)
        stored_as = probe.removesuffix(".probe")
        osp.put_object(Bucket=target.bucket, Key=key, Body=data)
        assert sorted(target.backend_keys(prefix)) == sorted([probe, stored_as])
        assert osp.get_object(Bucket=target.bucket, Key=key)["Body"].read() == data
        listed = osp.list_objects_v2(Bucket=target.bucket, Prefix=prefix)
        assert stored_as in [o["Key"] for o in listed.get("Contents", [])]
    else:
        with pytest.raises(ClientError) as ei:
            osp.put_object(Bucket=target.bucket, Key=key, Body=data)
        assert error_code(ei.value) == backend_code
        assert 400 <= http_status(ei.value) < 500
        assert target.backend_keys(prefix) == []  # in particular no 'dbl/slash.txt'


def test_metadata_and_headers_roundtrip(osp, target, prefix):
    key = prefix + "meta.txt"
    data = b"hello metadata"
    osp.put_object(
        Bucket=target.bucket,
        Key=key,
        Body=data,
        ContentType="text/x-osp; charset=utf-8",
        CacheControl="max-age=60, private",
        ContentDisposition='attachment; filename="meta.txt"',
        Metadata={"color": "blue", "Mixed-Case": "Value With Spaces", "empty-ish": "-"},
    )
    for resp in (
        osp.head_object(Bucket=target.bucket, Key=key),
        osp.get_object(Bucket=target.bucket, Key=key),
        target.backend_head(key),
    ):
        assert resp["ContentType"] == "text/x-osp; charset=utf-8"
        assert resp["CacheControl"] == "max-age=60, private"
        assert resp["ContentDisposition"] == 'attachment; filename="meta.txt"'
        assert resp["Metadata"] == {
            "color": "blue",
            "mixed-case": "Value With Spaces",
            "empty-ish": "-",
        }


def test_utf8_metadata_roundtrip(osp, target, prefix):
    # boto3 sends and signs header values as UTF-8; osp must verify and re-sign those same bytes.
    # botocore refuses non-ASCII metadata up front unless that check is taken out, as here.
    client = make_client(ENDPOINT, ACCESS_KEY, SECRET_KEY)
    client.meta.events.unregister("before-parameter-build.s3.PutObject", validate_ascii_metadata)
    key = prefix + "utf8-meta.txt"
    value = "Grüße aus Köln, voilà à la carte, 東京"
    client.put_object(Bucket=target.bucket, Key=key, Body=b"x", Metadata={"note": value})
    through_osp = osp.head_object(Bucket=target.bucket, Key=key)["Metadata"]["note"]
    assert through_osp == target.backend_head(key)["Metadata"]["note"]
    assert metadata_text(through_osp) == value


def test_tagging_roundtrip(osp, target, prefix):
    key = prefix + "tagged.txt"
    osp.put_object(Bucket=target.bucket, Key=key, Body=b"t", Tagging="project=osp&stage=test%20run")
    tags = osp.get_object_tagging(Bucket=target.bucket, Key=key)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [
        ("project", "osp"),
        ("stage", "test run"),
    ]
    back = target.backend.get_object_tagging(Bucket=target.backend_bucket, Key=key)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in back) == [("project", "osp"), ("stage", "test run")]
    assert osp.get_object(Bucket=target.bucket, Key=key)["TagCount"] == 2

    osp.put_object_tagging(Bucket=target.bucket, Key=key, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    tags = osp.get_object_tagging(Bucket=target.bucket, Key=key)["TagSet"]
    assert tags == [{"Key": "k", "Value": "v"}]
    osp.delete_object_tagging(Bucket=target.bucket, Key=key)
    assert osp.get_object_tagging(Bucket=target.bucket, Key=key)["TagSet"] == []


def test_etag_matches_backend(osp, target, prefix):
    key = prefix + "etag.bin"
    data = os.urandom(1234)
    put = osp.put_object(Bucket=target.bucket, Key=key, Body=data)
    assert put["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    assert osp.head_object(Bucket=target.bucket, Key=key)["ETag"] == target.backend_head(key)["ETag"]


@pytest.mark.parametrize("md5", [False, True], ids=["crc32", "content-md5"])
def test_delete_objects(osp, osp_md5, target, prefix, md5):
    client = osp_md5 if md5 else osp
    keys = [f"{prefix}multi/{i:02d} ü+%.txt" for i in range(7)]
    for k in keys:
        osp.put_object(Bucket=target.bucket, Key=k, Body=k.encode())
    keep = f"{prefix}keep.txt"
    osp.put_object(Bucket=target.bucket, Key=keep, Body=b"keep")

    resp = client.delete_objects(
        Bucket=target.bucket,
        Delete={"Objects": [{"Key": k} for k in keys] + [{"Key": prefix + "never-existed"}]},
    )
    assert http_status(resp) == 200
    assert resp.get("Errors", []) == []
    assert sorted(d["Key"] for d in resp["Deleted"]) == sorted(keys + [prefix + "never-existed"])

    assert target.backend_keys(prefix) == [keep]

    quiet = client.delete_objects(Bucket=target.bucket, Delete={"Objects": [{"Key": keep}], "Quiet": True})
    assert quiet.get("Errors", []) == []
    assert target.backend_keys(prefix) == []


def test_get_missing_key(osp, target, prefix):
    with pytest.raises(ClientError) as ei:
        osp.get_object(Bucket=target.bucket, Key=prefix + "missing")
    assert error_code(ei.value) == "NoSuchKey"
    assert http_status(ei.value) == 404


def test_empty_expect_header_is_ignored(target, prefix):
    """An Expect header without an expectation (ceph/s3-tests sends one) is ignored, as S3 does, not 417."""
    c = make_client(ENDPOINT, ACCESS_KEY, SECRET_KEY)
    c.meta.events.register("before-call.s3.PutObject", lambda params, **_: params["headers"].update({"Expect": ""}))
    c.put_object(Bucket=target.bucket, Key=prefix + "expect-empty")
    c.put_object(Bucket=target.bucket, Key=prefix + "expect-empty-body", Body=b"bar")
    assert target.backend_get(prefix + "expect-empty") == b""
    assert target.backend_get(prefix + "expect-empty-body") == b"bar"
