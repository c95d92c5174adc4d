"""Multipart uploads through osp: create / upload / list / complete / abort / UploadPartCopy."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from s3util import MiB, error_code, http_status


def _uploads(osp, bucket, prefix) -> dict[str, str]:
    """In-progress uploads under `prefix`. MinIO answers ListMultipartUploads with a Prefix only
    for an exact object name, so list everything (paginated) and filter here."""
    out = {}
    for page in osp.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        out.update({u["UploadId"]: u["Key"] for u in page.get("Uploads", []) if u["Key"].startswith(prefix)})
    return out


def test_list_multipart_uploads_exact_key_prefix(osp, target, prefix):
    key = prefix + "listed ü.bin"
    up = osp.create_multipart_upload(Bucket=target.bucket, Key=key)["UploadId"]
    resp = osp.list_multipart_uploads(Bucket=target.bucket, Prefix=key)
    assert [(u["Key"], u["UploadId"]) for u in resp.get("Uploads", [])] == [(key, up)]
    osp.abort_multipart_upload(Bucket=target.bucket, Key=key, UploadId=up)
    resp = osp.list_multipart_uploads(Bucket=target.bucket, Prefix=key)
    assert resp.get("Uploads", []) == []


def test_multipart_upload_complete(osp, target, prefix):
    key = prefix + "mp ü+.bin"
    parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1 * MiB)]
    whole = b"".join(parts_data)

    create = osp.create_multipart_upload(
        Bucket=target.bucket, Key=key, ContentType="application/x-mp", Metadata={"mp": "yes"}
    )
    upload_id = create["UploadId"]
    assert create["Key"] == key

    parts = []
    for n, data in enumerate(parts_data, start=1):
        r = osp.upload_part(Bucket=target.bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)
        assert r["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
        parts.append({"PartNumber": n, "ETag": r["ETag"]})

    listed = osp.list_parts(Bucket=target.bucket, Key=key, UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (p["PartNumber"], p["ETag"], len(d)) for p, d in zip(parts, parts_data)
    ]
    # paging through parts
    page1 = osp.list_parts(Bucket=target.bucket, Key=key, UploadId=upload_id, MaxParts=2)
    assert page1["IsTruncated"] is True
    assert [p["PartNumber"] for p in page1["Parts"]] == [1, 2]
    page2 = osp.list_parts(
        Bucket=target.bucket,
        Key=key,
        UploadId=upload_id,
        PartNumberMarker=page1["NextPartNumberMarker"],
    )
    assert [p["PartNumber"] for p in page2["Parts"]] == [3]

    assert _uploads(osp, target.bucket, prefix) == {upload_id: key}
    # the object does not exist before completion
    assert not target.backend_exists(key)

    done = osp.complete_multipart_upload(
        Bucket=target.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert http_status(done) == 200
    assert done["Key"] == key
    assert done["ETag"].endswith('-3"')
    assert _uploads(osp, target.bucket, prefix) == {}

    got = osp.get_object(Bucket=target.bucket, Key=key)
    assert got["ContentLength"] == len(whole)
    assert got["ResponseMetadata"]["HTTPHeaders"]["content-length"] == str(len(whole))
    assert got["Body"].read() == whole
    assert got["ETag"] == done["ETag"]
    assert got["ContentType"] == "application/x-mp"
    assert got["Metadata"] == {"mp": "yes"}
    assert hashlib.sha256(target.backend_get(key)).digest() == hashlib.sha256(whole).digest()
    assert target.backend_head(key)["ETag"] == done["ETag"]

    # a single part of a multipart object
    p2 = osp.get_object(Bucket=target.bucket, Key=key, PartNumber=2)
    assert p2["Body"].read() == parts_data[1]


def test_multipart_abort(osp, target, prefix):
    key = prefix + "aborted.bin"
    keep_key = prefix + "kept.bin"
    up = osp.create_multipart_upload(Bucket=target.bucket, Key=key)["UploadId"]
    keep = osp.create_multipart_upload(Bucket=target.bucket, Key=keep_key)["UploadId"]
    osp.upload_part(Bucket=target.bucket, Key=key, UploadId=up, PartNumber=1, Body=b"x" * 1024)
    assert _uploads(osp, target.bucket, prefix) == {up: key, keep: keep_key}

    r = osp.abort_multipart_upload(Bucket=target.bucket, Key=key, UploadId=up)
    assert http_status(r) == 204
    assert _uploads(osp, target.bucket, prefix) == {keep: keep_key}
    # also gone on the backend
    back = target.backend.list_multipart_uploads(Bucket=target.backend_bucket, Prefix=keep_key)
    assert [u["UploadId"] for u in back.get("Uploads", [])] == [keep]
    back = target.backend.list_multipart_uploads(Bucket=target.backend_bucket, Prefix=key)
    assert back.get("Uploads", []) == []

    with pytest.raises(ClientError) as ei:
        osp.list_parts(Bucket=target.bucket, Key=key, UploadId=up)
    assert error_code(ei.value) == "NoSuchUpload"
    assert http_status(ei.value) == 404
    assert not target.backend_exists(key)

    osp.abort_multipart_upload(Bucket=target.bucket, Key=keep_key, UploadId=keep)
    assert _uploads(osp, target.bucket, prefix) == {}


def test_multipart_complete_with_wrong_etag_fails(osp, target, prefix):
    key = prefix + "bad-complete.bin"
    up = osp.create_multipart_upload(Bucket=target.bucket, Key=key)["UploadId"]
    osp.upload_part(Bucket=target.bucket, Key=key, UploadId=up, PartNumber=1, Body=b"a" * 100)
    with pytest.raises(ClientError) as ei:
        osp.complete_multipart_upload(
            Bucket=target.bucket,
            Key=key,
            UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"%s"' % ("0" * 32)}]},
        )
    assert error_code(ei.value) == "InvalidPart"
    assert http_status(ei.value) == 400
    assert not target.backend_exists(key)


def test_upload_part_copy(osp, target, prefix):
    src, key = prefix + "copy-src.bin", prefix + "assembled.bin"
    src_data = os.urandom(6 * MiB + 123)
    osp.put_object(Bucket=target.bucket, Key=src, Body=src_data)

    up = osp.create_multipart_upload(Bucket=target.bucket, Key=key)["UploadId"]
    first = 5 * MiB
    # part 1: source bytes [0, 5 MiB), part 2: source bytes [1 MiB, end] (non-last parts must be
    # >= 5 MiB), part 3: a small plain part
    r1 = osp.upload_part_copy(
        Bucket=target.bucket,
        Key=key,
        UploadId=up,
        PartNumber=1,
        CopySource={"Bucket": target.bucket, "Key": src},
        CopySourceRange=f"bytes=0-{first - 1}",
    )
    r2 = osp.upload_part_copy(
        Bucket=target.bucket,
        Key=key,
        UploadId=up,
        PartNumber=2,
        CopySource={"Bucket": target.bucket, "Key": src},
        CopySourceRange=f"bytes={MiB}-{len(src_data) - 1}",
    )
    tail = b"tail-bytes" * 10
    r3 = osp.upload_part(Bucket=target.bucket, Key=key, UploadId=up, PartNumber=3, Body=tail)
    assert r1["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(src_data[:first]).hexdigest()
    assert r2["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(src_data[MiB:]).hexdigest()

    osp.complete_multipart_upload(
        Bucket=target.bucket,
        Key=key,
        UploadId=up,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": r2["CopyPartResult"]["ETag"]},
                {"PartNumber": 3, "ETag": r3["ETag"]},
            ]
        },
    )
    expected = src_data[:first] + src_data[MiB:] + tail
    assert osp.get_object(Bucket=target.bucket, Key=key)["Body"].read() == expected
    assert target.backend_get(key) == expected
