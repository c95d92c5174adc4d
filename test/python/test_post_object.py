"""POST Object: boto3's generate_presigned_post, sent as a browser sends a form
(multipart/form-data over http.client), and the refused variants, which must write nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

import boto3
from botocore.config import Config
from urllib3 import encode_multipart_formdata

from s3util import ACCESS_KEY, ENDPOINT, REGION, SECRET_KEY, metadata_text, raw_request, xml_field

MiB = 1024 * 1024


def form_body(fields: dict, content: bytes, filename: str = "photo.png", file_type: str = "image/png",
              after_file: dict | None = None) -> tuple[bytes, str]:
    """A form encoded as Chrome and Firefox encode it: fields in order, the file last."""
    boundary = "----WebKitFormBoundary" + uuid.uuid4().hex[:16]
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n")
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {file_type}\r\n\r\n".encode() + content + b"\r\n"
    )
    for name, value in (after_file or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def post_form(url: str, fields: dict, content: bytes, **kw):
    body, boundary = form_body(fields, content, **kw)
    return raw_request("POST", url, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                     "Origin": "https://app.example"}, body)


def presigned_post(client, bucket: str, key: str, fields=None, conditions=None, expires: int = 300):
    p = client.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires)
    # boto3 addresses the bucket path-style on osp's endpoint
    assert p["url"] == f"{ENDPOINT}/{bucket}"
    return p["url"], p["fields"]


def test_post_object_presigned_post(osp, target, prefix):
    """A browser upload with a key from ${filename}, a Content-Type condition, metadata and a size range."""
    data = os.urandom(300_000)
    url, fields = presigned_post(
        osp, target.bucket, prefix + "${filename}",
        fields={"Content-Type": "image/png", "x-amz-meta-owner": "zoë", "Cache-Control": "max-age=60"},
        conditions=[{"Content-Type": "image/png"}, {"x-amz-meta-owner": "zoë"}, ["starts-with", "$Cache-Control", "max-age="],
                    ["content-length-range", 1, MiB]],
    )
    r = post_form(url, fields, data, filename="cat picture.png")
    assert r.status == 204, r.body
    key = prefix + "cat picture.png"
    assert target.backend_get(key) == data
    head = target.backend_head(key)
    assert head["ContentType"] == "image/png"
    assert head["CacheControl"] == "max-age=60"
    # the UTF-8 value arrived whole
    assert metadata_text(head["Metadata"]["owner"]) == "zoë"
    assert r.headers["etag"] == head["ETag"]


def test_post_object_success_status_and_redirect(osp, target_b, prefix):
    """success_action_status 201 answers a PostResponse document; success_action_redirect a 303."""
    data = b"hello form\n" * 10
    url, fields = presigned_post(osp, target_b.bucket, prefix + "a.txt", fields={"success_action_status": "201"},
                                 conditions=[{"success_action_status": "201"}])
    r = post_form(url, fields, data)
    assert r.status == 201, r.body
    assert xml_field(r.body, "Bucket") == target_b.bucket  # the frontend name, not beta-real
    assert xml_field(r.body, "Key") == prefix + "a.txt"
    assert xml_field(r.body, "ETag") == '"' + hashlib.md5(data).hexdigest() + '"'
    assert target_b.backend_get(prefix + "a.txt") == data

    back = "https://app.example/done?x=1"
    url, fields = presigned_post(osp, target_b.bucket, prefix + "b.txt", fields={"success_action_redirect": back},
                                 conditions=[{"success_action_redirect": back}])
    r = post_form(url, fields, data)
    assert r.status == 303, r.body
    loc = urlsplit(r.headers["location"])
    assert (loc.scheme, loc.netloc, loc.path) == ("https", "app.example", "/done")
    assert parse_qs(loc.query) == {"x": ["1"], "bucket": [target_b.bucket], "key": [prefix + "b.txt"],
                                   "etag": ['"' + hashlib.md5(data).hexdigest() + '"']}
    assert target_b.backend_get(prefix + "b.txt") == data


def test_post_object_sigv2_policy(target_a, prefix):
    """boto3 with signature_version 's3' signs the policy with HMAC-SHA1 (AWSAccessKeyId, signature)."""
    v2 = boto3.session.Session().client("s3", endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                                        aws_secret_access_key=SECRET_KEY,
                                        config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    data = os.urandom(5000)
    url, fields = presigned_post(v2, target_a.bucket, prefix + "v2.bin")
    assert "AWSAccessKeyId" in fields and "signature" in fields
    r = post_form(url, fields, data)
    assert r.status == 204, r.body
    assert target_a.backend_get(prefix + "v2.bin") == data

    fields["signature"] = fields["signature"][:-4] + ("AAA=" if not fields["signature"].endswith("AAA=") else "BBB=")
    r = post_form(url, {**fields, "key": prefix + "v2-bad.bin"}, data)
    assert r.status == 403 and r.xml_code() == "SignatureDoesNotMatch", r.body
    assert not target_a.backend_exists(prefix + "v2-bad.bin")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_post_object_curl_form(osp, target_a, prefix, tmp_path):
    """curl -F, which sends `Expect: 100-continue` for a body over 1 MiB and writes its own framing."""
    data = os.urandom(3 * MiB + 17)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    url, fields = presigned_post(osp, target_a.bucket, prefix + "curl/${filename}", conditions=[["content-length-range", 1, 4 * MiB]])
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-v"]
    for name, value in fields.items():
        args += ["--form-string", f"{name}={value}"]
    out = subprocess.run(args + ["-F", f"file=@{path}", url], capture_output=True, text=True, timeout=120)
    assert out.stdout == "204", out.stderr[-2000:]
    assert "Expect: 100-continue" in out.stderr
    assert target_a.backend_get(prefix + "curl/upload.bin") == data


def test_post_object_empty_file(osp, target_b, prefix):
    url, fields = presigned_post(osp, target_b.bucket, prefix + "empty")
    r = post_form(url, fields, b"")
    assert r.status == 204, r.body
    assert target_b.backend_get(prefix + "empty") == b""


def test_post_object_checksum_field(osp, target_a, prefix):
    """A checksum field needs no condition (it can only make the backend refuse); a wrong one is refused by the backend."""
    data = os.urandom(2 * MiB)
    good = base64.b64encode(hashlib.sha256(data).digest()).decode()
    url, fields = presigned_post(osp, target_a.bucket, prefix + "sum.bin")
    r = post_form(url, {**fields, "x-amz-checksum-sha256": good}, data)
    assert r.status == 204, r.body
    assert target_a.backend_get(prefix + "sum.bin") == data
    assert target_a.backend.head_object(Bucket=target_a.backend_bucket, Key=prefix + "sum.bin", ChecksumMode="ENABLED")["ChecksumSHA256"] == good

    url, fields = presigned_post(osp, target_a.bucket, prefix + "badsum.bin")
    r = post_form(url, {**fields, "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(b"other").digest()).decode()}, data)
    assert r.status == 400, r.body
    assert not target_a.backend_exists(prefix + "badsum.bin")


def test_post_object_large_file_streams(osp, target_a, prefix, big_file):
    """100 MiB through the form: bytes exact, so the length osp announces upstream is right."""
    path, size, digest = big_file
    url, fields = presigned_post(osp, target_a.bucket, prefix + "big.bin", conditions=[["content-length-range", size, size]])
    r = post_form(url, fields, path.read_bytes())
    assert r.status == 204, r.body
    h = hashlib.sha256()
    for chunk in target_a.backend.get_object(Bucket=target_a.backend_bucket, Key=prefix + "big.bin")["Body"].iter_chunks(MiB):
        h.update(chunk)
    assert h.hexdigest() == digest


def _refused(osp, target, prefix, status, code, change, conditions=None, fields=None, data=b"x" * 1000, expires=300, **kw):
    url, signed = presigned_post(osp, target.bucket, prefix + "uploads/${filename}", fields=fields,
                                 conditions=conditions, expires=expires)
    sent = change(dict(signed))
    r = post_form(url, sent, data, **kw)
    assert r.status == status, r.body
    assert r.xml_code() == code, r.body
    assert target.backend_keys(prefix) == []  # nothing written, under any key
    return r


def test_post_object_wrong_signature(osp, target_a, prefix):
    def tamper(f):
        f["x-amz-signature"] = ("0" if f["x-amz-signature"][0] != "0" else "1") + f["x-amz-signature"][1:]
        return f
    _refused(osp, target_a, prefix, 403, "SignatureDoesNotMatch", tamper)


def test_post_object_expired_policy(osp, target_a, prefix):
    r = _refused(osp, target_a, prefix, 403, "AccessDenied", lambda f: f, expires=-10)
    assert "expired" in r.xml_message()


def test_post_object_key_outside_starts_with(osp, target_a, prefix):
    r = _refused(osp, target_a, prefix, 403, "AccessDenied", lambda f: {**f, "key": prefix + "elsewhere/x.png"})
    assert "starts-with" in r.xml_message()


def test_post_object_too_large_for_range(osp, target_a, prefix):
    _refused(osp, target_a, prefix, 400, "EntityTooLarge", lambda f: f, conditions=[["content-length-range", 0, 999]], data=b"y" * 1000)


def test_post_object_wrong_content_type(osp, target_a, prefix):
    _refused(osp, target_a, prefix, 403, "AccessDenied", lambda f: {**f, "Content-Type": "text/html"},
             fields={"Content-Type": "image/png"}, conditions=[["starts-with", "$Content-Type", "image/"]])


def test_post_object_unsigned_field(osp, target_a, prefix):
    """A field no condition names (here metadata) was not vouched for by the signer."""
    r = _refused(osp, target_a, prefix, 403, "AccessDenied", lambda f: {**f, "x-amz-meta-evil": "1"})
    assert "x-amz-meta-evil" in r.xml_message()


def test_post_object_copy_source_field(osp, target_a, prefix):
    """Even a policy that names x-amz-copy-source cannot turn the upload into a copy of another object."""
    osp.put_object(Bucket=target_a.bucket, Key=prefix + "source", Body=b"not yours")
    url, fields = presigned_post(osp, target_a.bucket, prefix + "copy", fields={"x-amz-copy-source": f"/{target_a.bucket}/{prefix}source"},
                                 conditions=[{"x-amz-copy-source": f"/{target_a.bucket}/{prefix}source"}])
    r = post_form(url, fields, b"")
    assert r.status == 400 and r.xml_code() == "InvalidArgument", r.body
    assert not target_a.backend_exists(prefix + "copy")


def test_post_object_fields_after_file(osp, target_a, prefix):
    """The file must be the form's last field: the upload stops short and the backend writes nothing."""
    _refused(osp, target_a, prefix, 400, "MalformedPOSTRequest", lambda f: f, data=os.urandom(200_000),
             after_file={"submit": "Upload"})


def test_post_object_not_authorized(limited, target_b, prefix):
    """The limited key may use bucket alpha only: its signed form for beta is refused as PutObject."""
    url, fields = presigned_post(limited, target_b.bucket, prefix + "x.bin")
    r = post_form(url, fields, b"data")
    assert r.status == 403 and r.xml_code() == "AccessDenied", r.body
    assert not target_b.backend_exists(prefix + "x.bin")


def test_post_object_anonymous(target_a, prefix):
    r = post_form(f"{ENDPOINT}/{target_a.bucket}", {"key": prefix + "anon.bin"}, b"data")
    assert r.status == 403 and r.xml_code() == "AccessDenied", r.body
    assert not target_a.backend_exists(prefix + "anon.bin")


# ------------------------------------------------ hand-made policies, as ceph/s3-tests writes them


def _v2_form(bucket: str, conditions: list, fields: list, expiration: str | None = None) -> tuple[bytes, str]:
    """A SigV2-signed policy and its form, encoded by urllib3 (what `requests` uses)."""
    doc = {"expiration": expiration or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600)), "conditions": conditions}
    policy = base64.b64encode(json.dumps(doc).encode())
    signature = base64.b64encode(hmac.new(SECRET_KEY.encode(), policy, hashlib.sha1).digest()).decode()
    auth = [("AWSAccessKeyId", ACCESS_KEY), ("signature", signature), ("policy", policy.decode())]
    return encode_multipart_formdata(fields[:1] + auth + fields[1:])


S3TESTS_CONDITIONS = lambda b: [{"bucket": b}, ["starts-with", "$key", "foo"], {"acl": "private"}, ["starts-with", "$Content-Type", "text/plain"], ["content-length-range", 0, 1024]]


@pytest.mark.parametrize("case, conditions, fields, status", [
    ("case-insensitive names", lambda b: [{"bUcKeT": b}, ["StArTs-WiTh", "$KeY", "foo"], {"AcL": "private"}, ["StArTs-WiTh", "$CoNtEnT-TyPe", "text/plain"], ["content-length-range", 0, 1024]],
     [("kEy", "foo.txt"), ("aCl", "private"), ("Content-Type", "text/plain")], 204),
    ("x-ignore- fields", S3TESTS_CONDITIONS, [("key", "foo.txt"), ("acl", "private"), ("Content-Type", "text/plain"), ("x-ignore-foo", "bar")], 204),
    ("${filename}", S3TESTS_CONDITIONS, [("key", "foo/${filename}"), ("acl", "private"), ("Content-Type", "text/plain")], 204),
    ("tagging", lambda b: S3TESTS_CONDITIONS(b) + [["starts-with", "$tagging", ""]],
     [("key", "foo.txt"), ("acl", "private"), ("tagging", "<Tagging><TagSet><Tag><Key>0</Key><Value>0</Value></Tag></TagSet></Tagging>"), ("Content-Type", "text/plain")], 204),
    ("no bucket condition", lambda b: S3TESTS_CONDITIONS(b)[1:], [("key", "foo.txt"), ("acl", "private"), ("Content-Type", "text/plain")], 403),
    ("metadata condition unmet", lambda b: S3TESTS_CONDITIONS(b) + [["eq", "$x-amz-meta-foo", ""]],
     [("key", "foo.txt"), ("acl", "private"), ("Content-Type", "text/plain"), ("x-amz-meta-foo", "barclamp")], 403),
    ("metadata field missing", lambda b: S3TESTS_CONDITIONS(b) + [["starts-with", "$x-amz-meta-foo", "bar"]],
     [("key", "foo.txt"), ("acl", "private"), ("Content-Type", "text/plain")], 403),
    ("empty condition", lambda b: [{}], [("key", "foo.txt"), ("acl", "private"), ("Content-Type", "text/plain")], 400),
    ("content-length-range without max", lambda b: S3TESTS_CONDITIONS(b)[:4] + [["content-length-range", 0]],
     [("key", "foo.txt"), ("acl", "private"), ("Content-Type", "text/plain")], 400),
    ("no key field", S3TESTS_CONDITIONS, [("acl", "private"), ("Content-Type", "text/plain")], 400),
])
def test_post_object_s3tests_cases(target_a, prefix, case, conditions, fields, status):
    """The POST cases of ceph/s3-tests (`test_post_object_*`), with their expected statuses, under this test's prefix."""
    fields = [(n, prefix + v if n.lower() == "key" else v) for n, v in fields]
    conds = [[c[0], c[1], prefix + c[2]] if isinstance(c, list) and str(c[1]).lower() == "$key" else c for c in conditions(target_a.bucket)]
    body, content_type = _v2_form(target_a.bucket, conds, fields + [("file", ("foo.txt", b"bar"))])
    r = raw_request("POST", f"{ENDPOINT}/{target_a.bucket}", {"Content-Type": content_type}, body)
    assert r.status == status, (case, r.body)
    stored = target_a.backend_keys(prefix)
    assert stored == ([prefix + "foo/foo.txt" if "${filename}" in fields[0][1] else prefix + "foo.txt"] if status == 204 else []), case
    if status == 204:
        assert target_a.backend_get(stored[0]) == b"bar"


def test_post_object_policy_dates(target_a, prefix):
    """An expired policy is refused (403), and an expiration that is not ISO 8601 too (400)."""
    fields = [("key", prefix + "foo.txt"), ("acl", "private"), ("Content-Type", "text/plain"), ("file", ("f", b"bar"))]
    conds = [{"bucket": target_a.bucket}, ["starts-with", "$key", prefix], {"acl": "private"}, ["starts-with", "$Content-Type", "text/plain"]]
    for expiration, status in (("2000-01-01T00:00:00Z", 403), (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 600)), 400)):
        body, content_type = _v2_form(target_a.bucket, conds, fields, expiration)
        r = raw_request("POST", f"{ENDPOINT}/{target_a.bucket}", {"Content-Type": content_type}, body)
        assert r.status == status, r.body
    assert target_a.backend_keys(prefix) == []
