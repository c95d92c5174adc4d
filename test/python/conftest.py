"""Shared fixtures for the osp end-to-end suite (boto3 + aws-cli).

The harness starts MinIO A, MinIO B and osp, then runs pytest with these variables:

  OSP_ENDPOINT, OSP_REGION                       the proxy
  OSP_ACCESS_KEY / OSP_SECRET_KEY                admin key (all buckets)
  OSP_LIMITED_ACCESS_KEY / OSP_LIMITED_SECRET_KEY   key allowed only bucket A
  OSP_BUCKET_A (alpha)                           same name on MinIO A
  OSP_BUCKET_B (beta), OSP_BUCKET_B_BACKEND      bucket B is called beta-real on MinIO B
  OSP_BUCKET_V (gamma), OSP_BUCKET_V_BACKEND     bucket V is called gamma-real on a Versity S3 Gateway
  OSP_BUCKET_DOWN (down)                         configured bucket whose backend is not running
  MINIO_A_ENDPOINT, MINIO_B_ENDPOINT, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD   direct backend access
  VERSITYGW_ENDPOINT, VERSITYGW_ACCESS_KEY, VERSITYGW_SECRET_KEY            the same for the gateway

Without OSP_ENDPOINT every test module is skipped. The suite can also be pointed straight at one
MinIO (OSP_ENDPOINT = MINIO_A_ENDPOINT = MINIO_B_ENDPOINT, root credentials as OSP keys) to check
the plain-S3 expectations; proxy-only tests skip themselves when their variables are missing.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Iterator

import pytest
from botocore.exceptions import ClientError

from s3util import (
    ACCESS_KEY,
    BIG_SIZE,
    BUCKET_A,
    BUCKET_B,
    BUCKET_B_BACKEND,
    BUCKET_V,
    BUCKET_V_BACKEND,
    ENDPOINT,
    LIMITED_ACCESS_KEY,
    LIMITED_SECRET_KEY,
    MINIO_A,
    MINIO_B,
    MINIO_PASSWORD,
    MINIO_USER,
    SECRET_KEY,
    VERSITYGW,
    VERSITYGW_PASSWORD,
    VERSITYGW_USER,
    MiB,
    Target,
    make_client,
)


def pytest_collection_modifyitems(config, items):
    if ENDPOINT:
        return
    skip = pytest.mark.skip(
        reason="OSP_ENDPOINT is not set: this suite needs a running osp (run it via test/run.sh)"
    )
    for item in items:
        item.add_marker(skip)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def osp():
    """boto3 S3 client for osp with the admin key."""
    return make_client(ENDPOINT, ACCESS_KEY, SECRET_KEY)


@pytest.fixture(scope="session")
def osp_md5():
    """Like `osp`, but DeleteObjects also carries Content-MD5 (see s3util.add_content_md5)."""
    return make_client(ENDPOINT, ACCESS_KEY, SECRET_KEY, content_md5=True)


@pytest.fixture(scope="session")
def limited():
    if not (LIMITED_ACCESS_KEY and LIMITED_SECRET_KEY):
        pytest.skip("OSP_LIMITED_ACCESS_KEY/OSP_LIMITED_SECRET_KEY not set (proxy-only test)")
    return make_client(ENDPOINT, LIMITED_ACCESS_KEY, LIMITED_SECRET_KEY)


def _backend(endpoint: str, user: str = MINIO_USER, password: str = MINIO_PASSWORD):
    if not (endpoint and user and password):
        pytest.skip("the backend's endpoint and credentials (MINIO_* / VERSITYGW_*) are not set")
    return make_client(endpoint, user, password)


@pytest.fixture(scope="session")
def backend_a():
    return _backend(MINIO_A)


@pytest.fixture(scope="session")
def backend_b():
    return _backend(MINIO_B)


@pytest.fixture(scope="session")
def backend_v():
    return _backend(VERSITYGW, VERSITYGW_USER, VERSITYGW_PASSWORD)


@pytest.fixture(scope="session")
def target_a(backend_a) -> Target:
    return Target(BUCKET_A, backend_a, BUCKET_A)


@pytest.fixture(scope="session")
def target_b(backend_b) -> Target:
    return Target(BUCKET_B, backend_b, BUCKET_B_BACKEND)


@pytest.fixture(scope="session")
def target_v(backend_v) -> Target:
    return Target(BUCKET_V, backend_v, BUCKET_V_BACKEND, server="versitygw")


@pytest.fixture(scope="session", autouse=True)
def _backend_buckets_exist():
    """The harness creates the buckets; create them if missing so a dev run against bare MinIO
    works too. Never fails the session: tests will report the real problem."""
    if not ENDPOINT or not (MINIO_USER and MINIO_PASSWORD):
        return
    for endpoint, bucket in ((MINIO_A, BUCKET_A), (MINIO_B, BUCKET_B_BACKEND)):
        if not endpoint:
            continue
        try:
            c = make_client(endpoint, MINIO_USER, MINIO_PASSWORD)
            try:
                c.head_bucket(Bucket=bucket)
            except ClientError:
                c.create_bucket(Bucket=bucket)
        except Exception:  # noqa: BLE001 - best effort only
            pass


@pytest.fixture(params=["A", "B", "V"], ids=lambda p: {"A": BUCKET_A, "B": BUCKET_B, "V": BUCKET_V}[p])
def target(request) -> Target:
    """Parametrizes a test over the three buckets: alpha on MinIO A, beta -> beta-real on MinIO B,
    gamma -> gamma-real on a Versity S3 Gateway (another implementation of S3)."""
    return request.getfixturevalue(f"target_{request.param.lower()}")


def _cleanup(t: Target, prefix: str) -> None:
    try:
        keys = t.backend_keys(prefix)
        for i in range(0, len(keys), 1000):
            t.backend.delete_objects(
                Bucket=t.backend_bucket,
                Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
            )
        # MinIO filters uploads by Prefix only for an exact object name: list all, filter here
        for page in t.backend.get_paginator("list_multipart_uploads").paginate(Bucket=t.backend_bucket):
            for u in page.get("Uploads", []):
                if u["Key"].startswith(prefix):
                    t.backend.abort_multipart_upload(
                        Bucket=t.backend_bucket, Key=u["Key"], UploadId=u["UploadId"]
                    )
    except Exception:  # noqa: BLE001 - cleanup must not mask the test result
        pass


@pytest.fixture
def prefix(request) -> Iterator[str]:
    """A unique key prefix for this test; everything under it is removed from both backends
    afterwards (directly on the backends, so a broken proxy cannot block cleanup)."""
    p = f"pytest/{request.node.name.split('[')[0]}/{uuid.uuid4().hex}/"
    targets = []
    for name in ("target_a", "target_b"):
        try:
            targets.append(request.getfixturevalue(name))
        except pytest.skip.Exception:
            pass
    yield p
    for t in targets:
        _cleanup(t, p)


@pytest.fixture(scope="session")
def big_file(tmp_path_factory):
    """100 MiB of random data written once per session; returns (path, size, sha256 hex)."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(BIG_SIZE // (4 * MiB)):
            chunk = os.urandom(4 * MiB)
            h.update(chunk)
            f.write(chunk)
    return path, BIG_SIZE, h.hexdigest()
