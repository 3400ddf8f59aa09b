"""docker-compose.yml cannot run here (no Docker engine), so it is read, and every
command it runs is run here with the same arguments."""

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from qip_portal.env import parse_storage_url
from tests.core.worker import migrated_database

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
BIN = Path(sys.executable).parent


def _command(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    args = shlex.split(command) if isinstance(command, str) else list(command)
    if args[0] in {"gunicorn", "celery"}:
        args[0] = str(BIN / args[0])
    elif args[0] == "python":
        args[0] = sys.executable
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path, **extra) -> dict:
    env = dict(os.environ)
    env.update(
        DEBUG="false",
        SECRET_KEY="compose-test-" + "q7Wm2Zr9Lk4Xv8Bn3Hs6Jd1Fp5Tc0Gy" * 2,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT=SERVICES["web"]["environment"]["SECURE_SSL_REDIRECT"],
        DATABASE_URL=f"sqlite:///{tmp_path / 'compose.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    env.update(extra)
    return env


def _interpolate(value: str, **variables: str) -> str:
    """``value`` as compose reads it: ``${NAME:?message}`` and ``${NAME:-default}`` are
    NAME's value from ``variables`` (the .env file), or the default."""

    def replace(match: re.Match) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        if name in variables:
            return variables[name]
        assert operator == ":-", f"{name} must be set in .env: {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(:[?-])([^}]*)\}", replace, value)


def test_compose_has_the_full_stack_with_exactly_one_beat():
    assert set(SERVICES) == {
        "migrate",
        "prepare-storage",
        "web",
        "worker",
        "beat",
        "postgres",
        "redis",
        "minio",
        "mailpit",
    }
    assert SERVICES["beat"]["deploy"]["replicas"] == 1
    redis = SERVICES["redis"]["command"]
    assert "--appendonly yes" in redis and "--maxmemory-policy noeviction" in redis
    for name in ["web", "worker", "postgres", "redis", "minio", "mailpit"]:
        assert "healthcheck" in SERVICES[name], name
    for name in ["web", "worker", "beat"]:
        deps = SERVICES[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["prepare-storage"]["condition"] == "service_completed_successfully"
        assert SERVICES[name]["environment"]["DEBUG"] == "false"
    assert SERVICES["prepare-storage"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_web_worker_and_beat_share_one_bucket_in_minio_which_is_not_published():
    """Several web nodes and workers need the same files: they all use MinIO's bucket,
    never a folder of their own, and the bucket is reached only inside the stack."""
    urls = {SERVICES[name]["environment"]["STORAGE_URL"] for name in ["web", "worker", "beat"]}
    assert len(urls) == 1
    password = "q7Wm2Zr9Lk4Xv8Bn3Hs6"
    options = parse_storage_url(_interpolate(urls.pop(), MINIO_ROOT_PASSWORD=password))
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["bucket_name"] == "qip-portal"
    minio = SERVICES["minio"]
    assert options["access_key"] == minio["environment"]["MINIO_ROOT_USER"]
    assert options["secret_key"] == _interpolate(
        minio["environment"]["MINIO_ROOT_PASSWORD"], MINIO_ROOT_PASSWORD=password
    )
    assert "ports" not in minio
    assert any(volume.split(":")[0] in COMPOSE["volumes"] for volume in minio["volumes"])
    for name in ["web", "worker", "beat"]:
        assert "MEDIA_ROOT" not in SERVICES[name]["environment"]
        assert not any("media" in volume for volume in SERVICES[name].get("volumes", []))
    with pytest.raises(AssertionError, match="MINIO_ROOT_PASSWORD must be set"):
        _interpolate(minio["environment"]["MINIO_ROOT_PASSWORD"])


def test_beat_keeps_its_schedule_in_a_named_volume():
    """Beat remembers when each entry last ran in its schedule file; in the container's
    own filesystem a restart would forget it, and a restart across Monday 07:30 would
    skip that week's digest."""
    args = _command("beat")
    schedule = Path(args[args.index("--schedule") + 1])
    mounts = dict(
        reversed(volume.split(":")[:2]) for volume in SERVICES["beat"].get("volumes", [])
    )
    assert str(schedule.parent) in mounts, SERVICES["beat"].get("volumes")
    assert mounts[str(schedule.parent)] in COMPOSE["volumes"]  # named, so it persists


def test_compose_prepare_storage_makes_the_bucket_and_proves_it_works(
    tmp_path, s3_server
):
    from tests.s3_server import Bucket

    with Bucket(s3_server, create=False) as bucket:
        env = _env(tmp_path, STORAGE_URL=bucket.url)
        first = subprocess.run(
            _command("prepare-storage"), cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=180,
        )  # fmt: skip
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith(f"Created the bucket {bucket.name} at http://127.0.0.1")
        assert "can be written, read and deleted" in first.stdout
        again = subprocess.run(
            _command("prepare-storage"), cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=180,
        )  # fmt: skip
        assert again.returncode == 0 and "exists." in again.stdout
        assert bucket.stored() == []  # the probe file is gone
    # Storage that cannot be reached stops the stack before the web starts.
    env = _env(tmp_path, STORAGE_URL=f"s3+http://k:s@127.0.0.1:{_free_port()}/nowhere")
    failed = subprocess.run(
        _command("prepare-storage"), cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert failed.returncode != 0 and "Could not reach or create the bucket" in failed.stderr


def test_compose_migrate_then_web_command_serves_the_health_check(tmp_path, bucket):
    env = _env(tmp_path, STORAGE_URL=bucket.url)
    subprocess.run(
        _command("migrate"), cwd=ROOT, env=env, check=True, capture_output=True, timeout=180
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    port = _free_port()
    args = _command("web")
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/healthz", timeout=3
                ) as response:
                    assert response.status == 200
                    assert response.headers["X-Frame-Options"] == "DENY"
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/accounts/login/", timeout=3
        ) as response:
            assert b"Sign in" in response.read()
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.redis
def test_compose_worker_answers_its_health_check_and_beat_starts(
    tmp_path, private_redis_url, bucket
):
    # A database of its own: the other tests' cache (emptied by each) must not take the
    # worker's queue bindings away mid-test.
    env = _env(tmp_path, REDIS_URL=private_redis_url, STORAGE_URL=bucket.url)
    # The database as the migrate service leaves it (its command is run in the test above).
    migrated_database(tmp_path / "compose.sqlite3", tmp_path=tmp_path, env=env)
    node = f"compose-test-{os.getpid()}"
    worker_args = _command("worker") + ["--hostname", f"celery@{node}"]
    worker = subprocess.Popen(
        worker_args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    beat_args = _command("beat")
    beat_args[beat_args.index("--schedule") + 1] = str(tmp_path / "celerybeat-schedule")
    beat = subprocess.Popen(
        beat_args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        health = SERVICES["worker"]["healthcheck"]["test"][1]
        health = health.replace("$$HOSTNAME", node).replace("celery -A", f"{BIN / 'celery'} -A")
        deadline = time.monotonic() + 60
        while True:
            # The compose health check is a shell command line; run it as compose would.
            result = subprocess.run(  # noqa: S602
                health, shell=True, cwd=ROOT, env=env, capture_output=True, text=True
            )
            if result.returncode == 0 and "pong" in result.stdout:
                break
            assert worker.poll() is None, worker.stdout.read().decode()
            assert time.monotonic() < deadline, result.stdout + result.stderr
            time.sleep(1)
        assert beat.poll() is None, beat.stdout.read().decode()
    finally:
        for process in (worker, beat):
            process.terminate()
        for process in (worker, beat):
            process.wait(timeout=30)
