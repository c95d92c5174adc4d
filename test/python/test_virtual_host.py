"""The virtual-hosted frontend: boto3 in addressing_style="virtual" against the shared osp, whose
[server] domains holds s3.localhost. boto3 connects to BUCKET.s3.localhost, which glibc does not
resolve: the test resolves that one domain to 127.0.0.1 for its own duration (monkeypatch restores it)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
import urllib.request
from botocore.exceptions import ClientError

from s3util import ACCESS_KEY, ENDPOINT, LIMITED_ACCESS_KEY, SECRET_KEY, error_code, make_client

DOMAIN = "s3.localhost"


@pytest.fixture
def resolve_domain(monkeypatch):
    if not LIMITED_ACCESS_KEY:
        pytest.skip("needs osp with [server] domains (proxy-only test)")
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and (host == DOMAIN or host.endswith("." + DOMAIN)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def virtual_client(signature_version: str = "s3v4"):
    port = urlsplit(ENDPOINT).port
    return make_client(f"http://{DOMAIN}:{port}", ACCESS_KEY, SECRET_KEY, s3={"addressing_style": "virtual"}, signature_version=signature_version)


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_boto3_virtual_hosted(resolve_domain, target_a, prefix, signature_version):
    c = virtual_client(signature_version)
    hosts = []
    c.meta.events.register("before-send.s3", lambda request, **_: hosts.append(urlsplit(request.url).hostname))
    key = prefix + "dir/a b+c;=.txt"
    c.put_object(Bucket=target_a.bucket, Key=key, Body=b"virtual-hosted bytes")
    assert hosts == [f"{target_a.bucket}.{DOMAIN}"]
    assert target_a.backend_get(key) == b"virtual-hosted bytes"
    assert c.get_object(Bucket=target_a.bucket, Key=key)["Body"].read() == b"virtual-hosted bytes"
    assert [o["Key"] for o in c.list_objects_v2(Bucket=target_a.bucket, Prefix=prefix)["Contents"]] == [key]
    url = c.generate_presigned_url("get_object", Params={"Bucket": target_a.bucket, "Key": key}, ExpiresIn=60)
    assert urlsplit(url).hostname == f"{target_a.bucket}.{DOMAIN}"
    assert urllib.request.urlopen(url, timeout=10).read() == b"virtual-hosted bytes"
    c.delete_object(Bucket=target_a.bucket, Key=key)
    assert not target_a.backend_exists(key)


def test_virtual_hosted_unknown_bucket(resolve_domain):
    with pytest.raises(ClientError) as ei:
        virtual_client().list_objects_v2(Bucket="no-such-bucket-here")
    assert error_code(ei.value) == "NoSuchBucket"
