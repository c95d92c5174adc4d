"""Range and conditional GETs through osp."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from botocore.exceptions import ClientError

from s3util import error_code, http_status

SIZE = 1000


@pytest.fixture
def obj(osp, target, prefix):
    key = prefix + "ranged.bin"
    data = os.urandom(SIZE)
    put = osp.put_object(Bucket=target.bucket, Key=key, Body=data)
    return key, data, put["ETag"]


@pytest.mark.parametrize(
    "rng,start,end",
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-99", 10, 99),
        ("bytes=-5", SIZE - 5, SIZE - 1),
        ("bytes=100-", 100, SIZE - 1),
        ("bytes=990-5000", 990, SIZE - 1),  # end past the object is clamped
    ],
)
def test_range_get(osp, target, obj, rng, start, end):
    key, data, _ = obj
    r = osp.get_object(Bucket=target.bucket, Key=key, Range=rng)
    assert http_status(r) == 206
    body = r["Body"].read()
    assert body == data[start : end + 1]
    assert r["ContentRange"] == f"bytes {start}-{end}/{SIZE}"
    assert r["ContentLength"] == end - start + 1
    assert r["ResponseMetadata"]["HTTPHeaders"]["content-length"] == str(end - start + 1)


BIG = 3 * 1024 * 1024


@pytest.fixture
def big_obj(osp, target, prefix):
    key = prefix + "ranged-big.bin"
    data = os.urandom(BIG)
    osp.put_object(Bucket=target.bucket, Key=key, Body=data)
    return key, data


# ranges small and large, open-ended and suffixes: each streamed, byte for byte
@pytest.mark.parametrize(
    "rng,start,end",
    [
        ("bytes=0-", 0, BIG - 1),
        ("bytes=1048576-3145727", 1048576, 3145727),
        ("bytes=100-1048675", 100, 1048675),  # exactly 1 MiB
        ("bytes=5-1048578", 5, 1048578),  # one byte short of it
        ("bytes=3000000-", 3000000, BIG - 1),
        ("bytes=-2000000", BIG - 2000000, BIG - 1),
    ],
)
def test_large_range_get(osp, target, big_obj, rng, start, end):
    key, data = big_obj
    r = osp.get_object(Bucket=target.bucket, Key=key, Range=rng)
    assert http_status(r) == 206
    assert r["ContentRange"] == f"bytes {start}-{end}/{BIG}"
    assert r["ContentLength"] == end - start + 1
    assert r["Body"].read() == data[start : end + 1]


def test_large_range_conditions(osp, target, big_obj):
    key, data = big_obj
    etag = osp.head_object(Bucket=target.bucket, Key=key)["ETag"]
    r = osp.get_object(Bucket=target.bucket, Key=key, Range="bytes=1-", IfMatch=etag)
    assert r["Body"].read() == data[1:]
    with pytest.raises(ClientError) as ei:
        osp.get_object(Bucket=target.bucket, Key=key, Range="bytes=1-", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert error_code(ei.value) == "PreconditionFailed"
    assert http_status(ei.value) == 412
    with pytest.raises(ClientError) as ei:
        osp.get_object(Bucket=target.bucket, Key=key + "-missing", Range="bytes=0-")
    assert error_code(ei.value) == "NoSuchKey"


def test_range_not_satisfiable(osp, target, obj):
    key, _, _ = obj
    with pytest.raises(ClientError) as ei:
        osp.get_object(Bucket=target.bucket, Key=key, Range=f"bytes={SIZE + 10}-")
    assert error_code(ei.value) == "InvalidRange"
    assert http_status(ei.value) == 416


def test_if_none_match_current_etag_is_304(osp, target, obj):
    key, _, etag = obj
    with pytest.raises(ClientError) as ei:
        osp.get_object(Bucket=target.bucket, Key=key, IfNoneMatch=etag)
    assert error_code(ei.value) == "304"
    assert http_status(ei.value) == 304
    # other ETag: full object
    r = osp.get_object(Bucket=target.bucket, Key=key, IfNoneMatch='"0123456789abcdef0123456789abcdef"')
    assert http_status(r) == 200


def test_if_match(osp, target, obj):
    key, data, etag = obj
    assert osp.get_object(Bucket=target.bucket, Key=key, IfMatch=etag)["Body"].read() == data
    with pytest.raises(ClientError) as ei:
        osp.get_object(Bucket=target.bucket, Key=key, IfMatch='"0123456789abcdef0123456789abcdef"')
    assert error_code(ei.value) == "PreconditionFailed"
    assert http_status(ei.value) == 412
    with pytest.raises(ClientError) as ei:
        osp.head_object(Bucket=target.bucket, Key=key, IfMatch='"0123456789abcdef0123456789abcdef"')
    assert http_status(ei.value) == 412


def test_if_modified_since(osp, target, obj):
    """osp passes the condition on and the backend decides, as it would directly. Not modified since
    its own Last-Modified: MinIO answers 304; versitygw 1.8 ignores If-Modified-Since (200)."""
    key, data, _ = obj
    last_modified = osp.head_object(Bucket=target.bucket, Key=key)["LastModified"]

    def outcome(client, bucket):
        try:
            assert client.get_object(Bucket=bucket, Key=key, IfModifiedSince=last_modified)["Body"].read() == data
            return "200"
        except ClientError as e:
            return error_code(e)

    direct = outcome(target.backend, target.backend_bucket)
    assert outcome(osp, target.bucket) == direct
    assert direct == ("200" if target.server == "versitygw" else "304")
    past = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    assert osp.get_object(Bucket=target.bucket, Key=key, IfModifiedSince=past)["Body"].read() == data


def test_if_unmodified_since(osp, target, obj):
    key, data, _ = obj
    past = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(ClientError) as ei:
        osp.get_object(Bucket=target.bucket, Key=key, IfUnmodifiedSince=past)
    assert error_code(ei.value) == "PreconditionFailed"
    assert http_status(ei.value) == 412


def test_range_with_if_match(osp, target, obj):
    key, data, etag = obj
    r = osp.get_object(Bucket=target.bucket, Key=key, Range="bytes=1-3", IfMatch=etag)
    assert http_status(r) == 206
    assert r["Body"].read() == data[1:4]


def test_conditional_put_if_none_match_star(osp, target, prefix):
    """PutObject If-None-Match: * (S3 conditional writes): the second write must be refused."""
    key = prefix + "once.txt"
    osp.put_object(Bucket=target.bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as ei:
        osp.put_object(Bucket=target.bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert error_code(ei.value) == "PreconditionFailed"
    assert http_status(ei.value) == 412
    assert target.backend_get(key) == b"first"
