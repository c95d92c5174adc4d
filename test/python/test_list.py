"""ListObjectsV2 / ListObjects (V1) through osp: prefix, delimiter, paging."""

from __future__ import annotations

import pytest

from s3util import http_status

N = 25


@pytest.fixture
def tree(osp, target, prefix):
    """25 objects: 10 under d1/, 10 under d2/sub/, 5 at the top level of the prefix."""
    keys = (
        [f"{prefix}d1/f{i:02d}" for i in range(10)]
        + [f"{prefix}d2/sub/f{i:02d}" for i in range(10)]
        + [f"{prefix}top{i:02d}.txt" for i in range(5)]
    )
    assert len(keys) == N
    for k in keys:
        osp.put_object(Bucket=target.bucket, Key=k, Body=k.encode())
    assert sorted(target.backend_keys(prefix)) == sorted(keys)
    return sorted(keys)


def test_list_v2_prefix(osp, target, prefix, tree):
    resp = osp.list_objects_v2(Bucket=target.bucket, Prefix=prefix)
    assert http_status(resp) == 200
    assert [o["Key"] for o in resp["Contents"]] == tree
    assert resp["KeyCount"] == N
    assert resp["IsTruncated"] is False
    sizes = {o["Key"]: o["Size"] for o in resp["Contents"]}
    assert all(sizes[k] == len(k.encode()) for k in tree)

    sub = osp.list_objects_v2(Bucket=target.bucket, Prefix=prefix + "d2/")
    assert [o["Key"] for o in sub["Contents"]] == [k for k in tree if k.startswith(prefix + "d2/")]

    none = osp.list_objects_v2(Bucket=target.bucket, Prefix=prefix + "nothing-here/")
    assert none["KeyCount"] == 0 and "Contents" not in none


def test_list_v2_delimiter(osp, target, prefix, tree):
    resp = osp.list_objects_v2(Bucket=target.bucket, Prefix=prefix, Delimiter="/")
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == [prefix + "d1/", prefix + "d2/"]
    assert [o["Key"] for o in resp["Contents"]] == [f"{prefix}top{i:02d}.txt" for i in range(5)]
    assert resp["KeyCount"] == 7

    deeper = osp.list_objects_v2(Bucket=target.bucket, Prefix=prefix + "d2/", Delimiter="/")
    assert [p["Prefix"] for p in deeper["CommonPrefixes"]] == [prefix + "d2/sub/"]
    assert "Contents" not in deeper


def test_list_v2_paging(osp, target, prefix, tree):
    seen: list[str] = []
    pages = 0
    kwargs = {"Bucket": target.bucket, "Prefix": prefix, "MaxKeys": 10}
    while True:
        resp = osp.list_objects_v2(**kwargs)
        pages += 1
        assert resp["MaxKeys"] == 10
        keys = [o["Key"] for o in resp.get("Contents", [])]
        assert len(keys) <= 10
        seen += keys
        if not resp["IsTruncated"]:
            break
        assert resp["NextContinuationToken"]
        kwargs["ContinuationToken"] = resp["NextContinuationToken"]
        assert pages < 10
    assert pages == 3
    assert seen == tree

    # StartAfter
    after = osp.list_objects_v2(Bucket=target.bucket, Prefix=prefix, StartAfter=tree[19])
    assert [o["Key"] for o in after["Contents"]] == tree[20:]

    # the paginator agrees
    pag = osp.get_paginator("list_objects_v2").paginate(
        Bucket=target.bucket, Prefix=prefix, PaginationConfig={"PageSize": 7}
    )
    assert [o["Key"] for page in pag for o in page.get("Contents", [])] == tree


def test_list_v2_paging_with_delimiter(osp, target, prefix, tree):
    items: list[str] = []
    kwargs = {"Bucket": target.bucket, "Prefix": prefix, "Delimiter": "/", "MaxKeys": 3}
    for _ in range(10):
        resp = osp.list_objects_v2(**kwargs)
        items += [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
        items += [o["Key"] for o in resp.get("Contents", [])]
        if not resp["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = resp["NextContinuationToken"]
    assert sorted(items) == sorted(
        [prefix + "d1/", prefix + "d2/"] + [f"{prefix}top{i:02d}.txt" for i in range(5)]
    )


def test_list_v1_prefix_and_delimiter(osp, target, prefix, tree):
    resp = osp.list_objects(Bucket=target.bucket, Prefix=prefix)
    assert http_status(resp) == 200
    assert [o["Key"] for o in resp["Contents"]] == tree
    assert resp["IsTruncated"] is False

    resp = osp.list_objects(Bucket=target.bucket, Prefix=prefix, Delimiter="/")
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == [prefix + "d1/", prefix + "d2/"]
    assert [o["Key"] for o in resp["Contents"]] == [f"{prefix}top{i:02d}.txt" for i in range(5)]


def test_list_v1_paging_with_marker(osp, target, prefix, tree):
    seen: list[str] = []
    marker = ""
    pages = 0
    while True:
        kwargs = {"Bucket": target.bucket, "Prefix": prefix, "MaxKeys": 10}
        if marker:
            kwargs["Marker"] = marker
        resp = osp.list_objects(**kwargs)
        pages += 1
        keys = [o["Key"] for o in resp.get("Contents", [])]
        assert len(keys) <= 10
        seen += keys
        if not resp["IsTruncated"]:
            break
        # without a delimiter S3 may omit NextMarker: the last key is the marker then
        marker = resp.get("NextMarker") or keys[-1]
        assert pages < 10
    assert pages == 3
    assert seen == tree

    pag = osp.get_paginator("list_objects").paginate(
        Bucket=target.bucket, Prefix=prefix, PaginationConfig={"PageSize": 4}
    )
    assert [o["Key"] for page in pag for o in page.get("Contents", [])] == tree
