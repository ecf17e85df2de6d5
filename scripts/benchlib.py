"""Shared pieces of scripts/bench-*: building, starting and stopping smetsd, the control API.

Not a benchmark itself. The scripts import it from their own folder.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRATCH = REPO / ".build-bench"
RELEASE = SCRATCH / "release"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(products: list[str]) -> None:
    """Builds the products in release mode into .build-bench (incremental: quick when up to date)."""
    for product in products:
        log(f"building {product} (release, --scratch-path .build-bench)...")
        subprocess.run(["swift", "build", "-c", "release", "--scratch-path", str(SCRATCH), "--product", product],
                       cwd=REPO, check=True, stdout=sys.stderr)


def machine() -> str:
    cores = os.cpu_count()
    try:
        swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        swift = "swift ?"
    distro = "?"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return f"{cores} cores, {distro}, {platform.machine()}, {swift}"


class RPCError(Exception):
    def __init__(self, error: dict):
        super().__init__(f"{error.get('code')}: {error.get('message')} {error.get('data', '')}")
        self.error = error


class Control:
    """JSON-RPC 2.0 over control.sock, one JSON object per line; event notifications are skipped."""

    def __init__(self, path: str, timeout: float | None = 600.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buffer = b""
        self.ids = itertools.count(1)

    def send(self, method: str, params: dict | None = None) -> int:
        request_id = next(self.ids)
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        self.sock.sendall(json.dumps(request, separators=(",", ":")).encode() + b"\n")
        return request_id

    def receive(self, request_id: int) -> Any:
        while True:
            while b"\n" not in self.buffer:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("control socket closed")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\n", 1)
            message = json.loads(line)
            if message.get("id") != request_id:
                continue
            if "error" in message:
                raise RPCError(message["error"])
            return message["result"]

    def call(self, method: str, params: dict | None = None) -> Any:
        return self.receive(self.send(method, params))

    def close(self) -> None:
        self.sock.close()


class Daemon:
    """smetsd (release build) on the shipped lab, in short fresh temporary folders."""

    def __init__(self, binary: Path = RELEASE / "smetsd", lab: Path = REPO / "devices", base: Path | None = None,
                 extra_args: list[str] | None = None, wrapper: list[str] | None = None):
        self.binary = binary
        self.wrapper = wrapper or []  # e.g. a profiler the daemon runs under
        self.lab = lab
        self.extra_args = extra_args or []
        self.base = base or Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp"))  # short: socket paths < 100 bytes
        self.state = self.base / "s"
        self.runtime = self.base / "r"
        self.state.mkdir(exist_ok=True)
        self.runtime.mkdir(exist_ok=True)
        self.logfile = self.base / "smetsd.log"
        self.extra_env: dict[str, str] = {}  # e.g. an LD_PRELOAD shim (scripts/crash-campaign)
        self.process: subprocess.Popen | None = None

    @property
    def control_path(self) -> str:
        return str(self.runtime / "control.sock")

    @property
    def han_path(self) -> str:
        return str(self.runtime / "han.sock")

    @property
    def database(self) -> Path:
        return self.state / "smetsd.sqlite"

    def command(self) -> list[str]:
        return [*self.wrapper, str(self.binary), "--lab", str(self.lab), "--state", str(self.state), "--runtime", str(self.runtime),
                "--log-format", "text", *self.extra_args]

    def start(self, timeout: float = 300.0) -> float:
        """Starts smetsd and waits until daemon.status says ready; returns the seconds that took."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY", "LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET", "WATCHDOG_USEC")}
        env.update(self.extra_env)
        started = time.monotonic()
        with open(self.logfile, "ab") as out:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"smetsd exited with {self.process.returncode}; see {self.logfile}")
            if os.path.exists(self.control_path):
                try:
                    control = Control(self.control_path, timeout=10)
                    try:
                        if control.call("daemon.status").get("state") == "ready":
                            return time.monotonic() - started
                    finally:
                        control.close()
                except (OSError, RPCError, ConnectionError, ValueError):
                    pass
            time.sleep(0.05)
        raise SystemExit(f"smetsd was not ready within {timeout}s; see {self.logfile}")

    def control(self, timeout: float | None = 600.0) -> Control:
        return Control(self.control_path, timeout=timeout)

    def stop(self, timeout: float = 120.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise SystemExit(f"smetsd did not stop within {timeout}s of SIGTERM")
        return self.process.returncode

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as uptime shows them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def all_devices(control: Control, params: dict | None = None) -> list[dict]:
    """Every device devices.list gives for `params`, in ID order, through pages of 1000."""
    devices: list[dict] = []
    cursor = None
    while True:
        page = control.call("devices.list", {**(params or {}), "limit": 1000, **({"cursor": cursor} if cursor else {})})
        devices += page["devices"]
        cursor = page.get("nextCursor")
        if not cursor:
            return devices


def generated_devices(control: Control, device_type: str) -> list[dict]:
    """Every device of `device_type` in generated premises (IDs G......), through devices.list pages."""
    devices: list[dict] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"type": device_type, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = control.call("devices.list", params)
        devices += [d for d in page["devices"] if d["premises"].startswith("G")]
        cursor = page.get("nextCursor")
        if not cursor:
            return devices


def eui_to_int64(text: str) -> int:
    """A device ID as the store keys it: the EUI-64 as a signed 64-bit integer."""
    value = int(text.replace("-", ""), 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def files_containing(directory: Path, needle: bytes) -> list[str]:
    """The files under `directory` holding `needle` anywhere (read in 64 MiB pieces with overlap)."""
    found = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        with open(path, "rb") as handle:
            tail = b""
            while True:
                chunk = handle.read(64 << 20)
                if not chunk:
                    break
                if needle in tail + chunk:
                    found.append(str(path))
                    break
                tail = chunk[-(len(needle) - 1):] if len(needle) > 1 else b""
    return found


FIRMWARE_MODEL = "acme-ppmid-dm"
FIRMWARE_KEY = REPO / "devices/keys/acme-meters-TEST-private.pem"


def build_image(directory: Path, size: int, version: str, model: str = FIRMWARE_MODEL) -> Path:
    """A signed GB-form image for `model` whose whole file is exactly `size` bytes, made by the release
    `smetsctl firmware build` (build smetsctl first)."""
    import random
    body = directory / f"body-{size}.bin"
    out = directory / f"{model}-{version}-{size}.ota"
    overhead = 56 + 66  # header without optional fields, signature block
    for _ in range(2):
        body.write_bytes(random.Random(size).randbytes(size - overhead))
        subprocess.run([str(RELEASE / "smetsctl"), "firmware", "build", "--model", model, "--version", version,
                        "--body", str(body), "--key", str(FIRMWARE_KEY), "--lab", str(REPO / "devices"), "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        actual = out.stat().st_size
        if actual == size:
            return out
        overhead += actual - size
    raise SystemExit(f"could not make a {size}-byte image ({out.stat().st_size})")


def smets2_ppmids(control: Control, model: str = FIRMWARE_MODEL) -> list[str]:
    """Generated PPMIDs of `model` in SMETS2+ mode: the ones a firmware.update may reach (on SMETS1
    hubs, MP202 Requirement 7 refuses OTA)."""
    return [d["id"] for d in generated_devices(control, "PPMID") if d["mode"] == "SMETS2+" and d["model"] == model]


ECHO_SOURCE = REPO / "bench/c/han-echo.c"


class EchoServer:
    """bench/c/han-echo.c, compiled with `cc -O2` into `directory`, listening on `path`: a server that
    shares no code with smetsd or smetsbench and sends every byte straight back."""

    def __init__(self, directory: Path, path: str, threads: int | None = None):
        self.binary = directory / "han-echo"
        self.path = path
        self.threads = threads or os.cpu_count() or 1
        compiler = os.environ.get("CC", "cc")
        subprocess.run([compiler, "-O2", "-pthread", "-Wall", "-Wextra", "-Werror", "-o", str(self.binary), str(ECHO_SOURCE)],
                       check=True)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([str(self.binary), self.path, str(self.threads)], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit(f"han-echo did not start (exit {self.process.poll()})")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def image_params(control: Control, image: Path) -> dict:
    """The params naming `image` for firmware.check / firmware.update on this connection: inline base64
    when small, else uploaded in chunks (firmware.upload.*). smetsd opens no path a request names
    outside its imagesDirectory (docs/firmware.md, "Where an image comes from")."""
    import base64
    import hashlib
    data = image.read_bytes()
    if len(data) <= 512 * 1024:
        return {"image": base64.b64encode(data).decode()}
    begun = control.call("firmware.upload.begin", {"size": len(data)})
    step = min(256 * 1024, begun["chunkBytes"])
    for offset in range(0, len(data), step):
        control.call("firmware.upload.chunk", {"upload": begun["upload"], "offset": offset,
                                               "data": base64.b64encode(data[offset:offset + step]).decode()})
    control.call("firmware.upload.commit", {"upload": begun["upload"], "sha256": hashlib.sha256(data).hexdigest()})
    return {"upload": begun["upload"]}
