"""The Docker image, built for real and run from its own filesystem.

No image registry is reachable here, so the base is assembled from Debian's packages (docker/debian-base.sh) and
passed as the Dockerfile's BASE_IMAGE build argument. Containers cannot be started on these machines (the runtime
may not set resource limits), so the built image's filesystem is exported and the server started from it under
chroot, as the image's own user, with the image's own environment, entry point and health check.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI

from tests.e2e.support import free_port

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/kimi-free-api-base:bookworm"
IMAGE = "localhost/kimi-free-api:e2e"

pytestmark = pytest.mark.timeout(1200)


def _run(*args: str, timeout: float = 900) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args[:3])} … failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def _machine_can_build() -> str:
    missing = [tool for tool in ("podman", "mmdebstrap", "chroot", "unshare") if shutil.which(tool) is None]
    if missing:
        return f"no {', '.join(missing)} on this machine (.ci/run installs them)"
    if os.geteuid() != 0:
        return "building the Debian base and chroot need root"
    return ""


@pytest.fixture(scope="module")
def image_config() -> dict[str, Any]:
    reason = _machine_can_build()
    if reason:
        print(f"skipping the image test: {reason}")
        pytest.skip(reason)
    if subprocess.run(["podman", "image", "exists", BASE], check=False).returncode != 0:
        _run(str(ROOT / "docker" / "debian-base.sh"), BASE)
    _run(
        "podman", "build", "--isolation=chroot", "--format", "docker",
        "--build-arg", f"BASE_IMAGE={BASE}", "-t", IMAGE, str(ROOT),
    )  # fmt: skip
    inspected = json.loads(_run("podman", "image", "inspect", IMAGE))[0]
    config: dict[str, Any] = inspected["Config"]
    # Podman reports the health check beside the config rather than inside it.
    config.setdefault("Healthcheck", inspected.get("Healthcheck"))
    return config


@pytest.fixture(scope="module")
def rootfs(image_config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("image")
    container = _run("podman", "create", IMAGE).strip()
    try:
        _run("podman", "export", "-o", str(work / "fs.tar"), container)
    finally:
        _run("podman", "rm", container)
    root = work / "root"
    root.mkdir()
    with tarfile.open(work / "fs.tar") as archive:
        archive.extractall(root, filter="fully_trusted")
    (work / "fs.tar").unlink()
    yield root
    shutil.rmtree(work, ignore_errors=True)


def test_image_is_multi_stage_non_root_with_volume_port_and_health_check(image_config: dict[str, Any]) -> None:
    assert image_config["User"] not in {"", "root", "0"}
    assert "/data" in image_config["Volumes"]
    assert "8000/tcp" in image_config["ExposedPorts"]
    assert image_config["Healthcheck"]["Test"][0] == "CMD"
    env = dict(item.split("=", 1) for item in image_config["Env"])
    assert env["DATA_DIR"] == "/data"
    assert env["PORT"] == "8000"
    assert image_config["Entrypoint"] == ["kimi-free-api"]


def test_image_holds_no_build_tools_and_no_sources(rootfs: Path) -> None:
    # The runtime stage copies only the virtual environment: pip, the build tree and tests stay in the build stage.
    assert not (rootfs / "build").exists()
    assert not list((rootfs / "opt" / "kimi-free-api").glob("lib/python3*/site-packages/pip"))
    assert (rootfs / "opt" / "kimi-free-api" / "bin" / "kimi-free-api").exists()


def _chroot_command(rootfs: Path, config: dict[str, Any], command: list[str]) -> list[str]:
    user = config["User"]
    uid = next(
        line.split(":")[2]
        for line in (rootfs / "etc" / "passwd").read_text().splitlines()
        if line.split(":")[0] == user
    )
    # A private mount namespace: /proc and /dev appear inside the image's tree and vanish with the process; every
    # step execs the next, so a signal to the returned process reaches the server itself.
    script = (
        'root=$0 uid=$1; shift; mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" && '
        'cd "$root" && exec chroot --userspec="$uid:$uid" "$root" env -i "$@"'
    )
    return ["unshare", "--mount", "sh", "-c", script, str(rootfs), uid, *command]


async def test_server_from_the_image_filesystem_answers_a_chat(rootfs: Path, image_config: dict[str, Any]) -> None:
    port = free_port()
    env = [*image_config["Env"], "HOST=127.0.0.1", f"PORT={port}", "LOG_LEVEL=WARNING"]
    serve = [*env, "sh", "-c", f'cd {image_config["WorkingDir"]} && exec "$@"', "-", *image_config["Entrypoint"]]
    command = _chroot_command(rootfs, image_config, [*serve, *image_config["Cmd"], "--emulator"])
    process = await asyncio.create_subprocess_exec(*command, stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                try:
                    async with session.get(url + "/healthz") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, "the server in the image exited"
                    await asyncio.sleep(0.05)
        health = image_config["Healthcheck"]["Test"][1:]
        check = await asyncio.create_subprocess_exec(*_chroot_command(rootfs, image_config, [*env, *health]))
        assert await asyncio.wait_for(check.wait(), 30) == 0
        async with AsyncOpenAI(base_url=url + "/v1", api_key="demo", max_retries=0, timeout=30) as client:
            reply = await client.chat.completions.create(
                model="kimi", messages=[{"role": "user", "content": "from the image"}]
            )
        assert (reply.choices[0].message.content or "").startswith("Echo: from the image")
        # State lands in the image's volume, written by its non-root user.
        written = list((rootfs / "data").iterdir())
        assert written
        assert all(path.stat().st_uid != 0 for path in written)
    finally:
        if process.returncode is None:
            process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")[-2000:]
