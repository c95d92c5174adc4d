"""CopyObject through osp: within a bucket (the copy source must be re-addressed to the backend
bucket name, e.g. beta -> beta-real), across buckets on different backends, metadata directives."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from s3util import BUCKET_A, BUCKET_B, DISTINCT_BACKENDS, error_code, http_status


def _put_src(osp, bucket, key, data):
    return osp.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ContentType="application/x-src",
        Metadata={"origin": "source", "n": "1"},
    )


def test_copy_within_bucket_metadata_copy(osp, target, prefix):
    src, dst = prefix + "src ü+.bin", prefix + "dst ü+.bin"
    data = os.urandom(70_000)
    put = _put_src(osp, target.bucket, src, data)
    resp = osp.copy_object(
        Bucket=target.bucket,
        Key=dst,
        CopySource={"Bucket": target.bucket, "Key": src},
        MetadataDirective="COPY",
    )
    assert http_status(resp) == 200
    assert resp["CopyObjectResult"]["ETag"] == put["ETag"]

    assert target.backend_get(dst) == data
    head = osp.head_object(Bucket=target.bucket, Key=dst)
    assert head["ContentType"] == "application/x-src"
    assert head["Metadata"] == {"origin": "source", "n": "1"}
    assert osp.get_object(Bucket=target.bucket, Key=dst)["Body"].read() == data
    assert sorted(target.backend_keys(prefix)) == sorted([src, dst])


def test_copy_within_bucket_metadata_replace(osp, target, prefix):
    src, dst = prefix + "src.txt", prefix + "dst.txt"
    data = b"replace me " * 100
    _put_src(osp, target.bucket, src, data)
    osp.copy_object(
        Bucket=target.bucket,
        Key=dst,
        CopySource={"Bucket": target.bucket, "Key": src},
        MetadataDirective="REPLACE",
        ContentType="text/plain",
        Metadata={"replaced": "yes"},
    )
    for head in (osp.head_object(Bucket=target.bucket, Key=dst), target.backend_head(dst)):
        assert head["ContentType"] == "text/plain"
        assert head["Metadata"] == {"replaced": "yes"}
    assert target.backend_get(dst) == data
    # source untouched
    src_head = osp.head_object(Bucket=target.bucket, Key=src)
    assert src_head["Metadata"] == {"origin": "source", "n": "1"}
    assert src_head["ContentType"] == "application/x-src"


def test_copy_onto_itself_replace_metadata(osp, target, prefix):
    key = prefix + "self.txt"
    _put_src(osp, target.bucket, key, b"self")
    osp.copy_object(
        Bucket=target.bucket,
        Key=key,
        CopySource={"Bucket": target.bucket, "Key": key},
        MetadataDirective="REPLACE",
        Metadata={"v": "2"},
        ContentType="text/x-v2",
    )
    head = target.backend_head(key)
    assert head["Metadata"] == {"v": "2"} and head["ContentType"] == "text/x-v2"
    assert target.backend_get(key) == b"self"


def test_copy_missing_source(osp, target, prefix):
    with pytest.raises(ClientError) as ei:
        osp.copy_object(
            Bucket=target.bucket,
            Key=prefix + "dst",
            CopySource={"Bucket": target.bucket, "Key": prefix + "does-not-exist"},
        )
    assert error_code(ei.value) == "NoSuchKey"
    assert http_status(ei.value) == 404
    assert target.backend_keys(prefix) == []


@pytest.mark.parametrize("directive", ["COPY", "REPLACE"])
def test_copy_across_backends(osp, target_a, target_b, prefix, directive):
    """alpha (MinIO A) -> beta (MinIO B, really beta-real). A backend cannot read another backend's
    bucket, so osp either performs the copy itself (GET from A, PUT to B) or must refuse with a
    clear S3 error, and then nothing may be written anywhere."""
    src, dst = prefix + "x-src.bin", prefix + "x-dst.bin"
    data = os.urandom(300_000)
    _put_src(osp, BUCKET_A, src, data)
    extra = {"ContentType": "text/x-new", "Metadata": {"new": "1"}} if directive == "REPLACE" else {}
    try:
        osp.copy_object(
            Bucket=BUCKET_B,
            Key=dst,
            CopySource={"Bucket": BUCKET_A, "Key": src},
            MetadataDirective=directive,
            **extra,
        )
    except ClientError as e:
        if not DISTINCT_BACKENDS:
            raise
        # osp (src/pipeline/proxy.ts) refuses copies between different backends with 501 NotImplemented
        assert (error_code(e), http_status(e)) == ("NotImplemented", 501), e.response
        assert "backend" in e.response["Error"].get("Message", "").lower()
        assert target_b.backend_keys(prefix) == []
        assert target_a.backend_keys(prefix) == [src]  # source untouched, nothing new on A
        return
    assert target_b.backend_get(dst) == data
    head = target_b.backend_head(dst)
    if directive == "COPY":
        assert head["ContentType"] == "application/x-src"
        assert head["Metadata"] == {"origin": "source", "n": "1"}
    else:
        assert head["ContentType"] == "text/x-new"
        assert head["Metadata"] == {"new": "1"}
    assert target_a.backend_keys(prefix) == [src]


def test_upload_part_copy_across_backends(osp, target_a, target_b, prefix):
    """UploadPartCopy from alpha into an upload on beta: same rule as CopyObject."""
    src, dst = prefix + "pc-src.bin", prefix + "pc-dst.bin"
    data = os.urandom(1000)
    osp.put_object(Bucket=BUCKET_A, Key=src, Body=data)
    up = osp.create_multipart_upload(Bucket=BUCKET_B, Key=dst)["UploadId"]
    try:
        try:
            r = osp.upload_part_copy(
                Bucket=BUCKET_B,
                Key=dst,
                UploadId=up,
                PartNumber=1,
                CopySource={"Bucket": BUCKET_A, "Key": src},
            )
        except ClientError as e:
            if not DISTINCT_BACKENDS:
                raise
            assert (error_code(e), http_status(e)) == ("NotImplemented", 501), e.response
            assert osp.list_parts(Bucket=BUCKET_B, Key=dst, UploadId=up).get("Parts", []) == []
            return
        osp.complete_multipart_upload(
            Bucket=BUCKET_B,
            Key=dst,
            UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]},
        )
        up = None
        assert target_b.backend_get(dst) == data
    finally:
        if up:
            osp.abort_multipart_upload(Bucket=BUCKET_B, Key=dst, UploadId=up)
