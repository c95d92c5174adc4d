"""The `aws` command line (aws-cli v1) through osp, as a user would run it."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import subprocess
import time

import pytest

from s3util import BUCKET_A, BUCKET_B, ENDPOINT, MiB, aws_cli_command, aws_cli_env

AWS = aws_cli_command()
pytestmark = pytest.mark.skipif(AWS is None, reason="the `aws` command (aws-cli) is not installed")


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory):
    return aws_cli_env(tmp_path_factory.mktemp("awscfg"))


@pytest.fixture
def aws(aws_env):
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [*AWS, "--endpoint-url", ENDPOINT, *args]
        p = subprocess.run(cmd, env=aws_env, capture_output=True, text=True, timeout=180)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args)} -> rc={p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    return run


def _sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.big
def test_cp_100mib_up_and_down(aws, target, prefix, big_file, tmp_path):
    path, size, digest = big_file
    uri = f"s3://{target.bucket}/{prefix}big cli.bin"
    aws("s3", "cp", str(path), uri, "--only-show-errors")

    head = target.backend_head(prefix + "big cli.bin")
    assert head["ContentLength"] == size
    assert "-" in head["ETag"], "aws s3 cp of 100 MiB should have been a multipart upload"

    out = tmp_path / "down.bin"
    aws("s3", "cp", uri, str(out), "--only-show-errors")
    assert out.stat().st_size == size
    assert _sha256_file(out) == digest


def test_ls(aws, osp, target, prefix):
    for k in ("a.txt", "b c.txt", "sub/d.txt"):
        osp.put_object(Bucket=target.bucket, Key=prefix + k, Body=k.encode())
    out = aws("s3", "ls", f"s3://{target.bucket}/{prefix}").stdout
    lines = [ln.split() for ln in out.splitlines()]
    assert ["PRE", "sub/"] in lines
    names = {" ".join(ln[3:]) for ln in lines if ln and ln[0] != "PRE"}
    assert names == {"a.txt", "b c.txt"}

    rec = aws("s3", "ls", "--recursive", f"s3://{target.bucket}/{prefix}").stdout
    keys = {" ".join(ln.split()[3:]) for ln in rec.splitlines() if ln.strip()}
    assert keys == {prefix + k for k in ("a.txt", "b c.txt", "sub/d.txt")}


def test_ls_buckets(aws):
    out = aws("s3", "ls").stdout
    names = {ln.split()[-1] for ln in out.splitlines() if ln.strip()}
    assert {BUCKET_A, BUCKET_B} <= names


def test_sync_up_and_back(aws, target, prefix, tmp_path):
    src = tmp_path / "src"
    files = {
        "top.txt": b"top",
        "empty.bin": b"",
        "dir one/a.bin": os.urandom(10_000),
        "dir one/deeper/ü+b.txt": b"unicode plus",
        "dir2/c.bin": os.urandom(3 * MiB),
    }
    # written a minute ago: a backend that keeps Last-Modified to the second (versitygw) could
    # otherwise date an upload before the file's own time, and a second sync would send it again
    written = time.time() - 60
    for rel, data in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (written, written))

    uri = f"s3://{target.bucket}/{prefix}sync/"
    aws("s3", "sync", str(src), uri, "--only-show-errors")
    assert sorted(target.backend_keys(prefix)) == sorted(prefix + "sync/" + r for r in files)
    for rel, data in files.items():
        assert target.backend_get(prefix + "sync/" + rel) == data

    # a second sync has nothing to do
    again = aws("s3", "sync", str(src), uri)
    assert "upload:" not in again.stdout

    back = tmp_path / "back"
    aws("s3", "sync", uri, str(back), "--only-show-errors")
    cmp = filecmp.dircmp(src, back)

    def same(c):
        assert not c.left_only and not c.right_only and not c.diff_files, (
            c.left_only,
            c.right_only,
            c.diff_files,
        )
        for sub in c.subdirs.values():
            same(sub)

    same(cmp)
    for rel, data in files.items():
        assert (back / rel).read_bytes() == data


def test_rm_recursive(aws, osp, target, prefix):
    keys = [f"{prefix}rm/{i}/f{j}.txt" for i in range(3) for j in range(4)]
    for k in keys:
        osp.put_object(Bucket=target.bucket, Key=k, Body=b"x")
    keep = prefix + "rm-keep.txt"
    osp.put_object(Bucket=target.bucket, Key=keep, Body=b"keep")
    aws("s3", "rm", "--recursive", f"s3://{target.bucket}/{prefix}rm/", "--only-show-errors")
    assert target.backend_keys(prefix) == [keep]


def test_s3api_head_object(aws, osp, target, prefix):
    key = prefix + "head me.json"
    osp.put_object(
        Bucket=target.bucket, Key=key, Body=b'{"a":1}', ContentType="application/json", Metadata={"m": "v"}
    )
    out = aws("s3api", "head-object", "--bucket", target.bucket, "--key", key).stdout
    info = json.loads(out)
    assert info["ContentLength"] == 7
    assert info["ContentType"] == "application/json"
    assert info["Metadata"] == {"m": "v"}
    assert info["ETag"] == target.backend_head(key)["ETag"]

    missing = aws("s3api", "head-object", "--bucket", target.bucket, "--key", prefix + "nope", check=False)
    assert missing.returncode != 0
    assert "404" in missing.stderr


def test_cli_wrong_secret(aws_env, target, prefix, tmp_path):
    env = dict(aws_env, AWS_SECRET_ACCESS_KEY="definitely-wrong")
    f = tmp_path / "x.txt"
    f.write_bytes(b"x")
    p = subprocess.run(
        [*AWS, "--endpoint-url", ENDPOINT, "s3", "cp", str(f), f"s3://{target.bucket}/{prefix}x.txt"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode != 0
    assert "SignatureDoesNotMatch" in p.stderr
    assert target.backend_keys(prefix) == []
