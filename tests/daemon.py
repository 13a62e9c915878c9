"""secpath daemons in network namespaces of the test's own, stopped by pid."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from secpath.daemon.control import ControlError, request
from tests.netns import run_in, stop_process

POLICY = """[policy]
name = "{name}"

[local]
id = "{me}"
addresses = ["{me}"]

[key_exchange]
[[key_exchange.method]]
integrity = "{ike_integrity}"
encryption = "{ike_encryption}"
dh_group = {dh_group}

[[filter_list]]
name = "path"
[[filter_list.filter]]
source = "{local_ts}"
destination = "{remote_ts}"

[[filter_action]]
name = "secure"
behavior = "negotiate"
[[filter_action.security_method]]
encryption = "{esp_encryption}"
{esp_integrity_line}

[[rule]]
name = "path"
filter_list = "path"
filter_action = "secure"
tunnel_endpoint = "{tunnel}"
peer = "{peer}"
remote_id = "{peer_id}"
start = "{start}"
[[rule.authentication]]
{auth}
"""


def psk_file(path: Path, secret: str = "secpath-interop-test-psk-not-secret\n") -> Path:
    """A preshared key file only its owner can read (the loader refuses others)."""
    path.write_text(secret)
    path.chmod(0o600)
    return path


def write_policy(
    path: Path,
    *,
    me: str,
    peer: str,
    local_ts: str | None = None,
    remote_ts: str | None = None,
    tunnel: bool = False,
    psk_file: Path | None = None,
    cert: tuple[Path, Path, Path] | None = None,
    peer_id: str | None = None,
    ike: tuple[str, str, int] = ("sha256", "aes128", 14),
    esp: tuple[str, str] = ("aes128gcm", "none"),
    start: str = "trap",
) -> Path:
    if cert is not None:
        ca, crt, key = cert
        auth = f'method = "certificate"\nca = "{ca}"\ncertificate = "{crt}"\nprivate_key = "{key}"'
    else:
        assert psk_file is not None
        auth = f'method = "psk"\nsecret_file = "{psk_file}"'
    path.write_text(
        POLICY.format(
            name=f"host {me}",
            me=me,
            peer=peer,
            local_ts=local_ts or "me",
            remote_ts=remote_ts or peer,
            tunnel=peer if tunnel else "none",
            peer_id=peer_id or peer,
            ike_integrity=ike[0],
            ike_encryption=ike[1],
            dh_group=ike[2],
            esp_encryption=esp[0],
            esp_integrity_line=f'integrity = "{esp[1]}"' if esp[1] != "none" else "",
            start=start,
            auth=auth,
        )
    )
    return path


class SecpathDaemon:
    def __init__(self, ns: str, policy: Path, workdir: Path, *extra: str) -> None:
        self.ns = ns
        self.policy = policy
        self.control = workdir / "control.sock"
        self.log = workdir / "daemon.log"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        out = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                sys.executable,
                "-m",
                "secpath",
                "up",
                str(self.policy),
                "--foreground",
                "--control",
                str(self.control),
                *self.extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while not self._ready():  # the policy applied: sockets, routes, firewall
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"secpath daemon did not start in {self.ns}: {self.log.read_text()}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        if not self.control.exists():
            return False
        try:
            request(self.control, "status", timeout=2)
        except ControlError:
            return False
        return True

    def cli(self, *args: str, check: bool = True) -> str:
        result = run_in(
            self.ns, [sys.executable, "-m", "secpath", *args, "--control", str(self.control)], check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"secpath {' '.join(args)}: {result.stdout}{result.stderr}\n{self.log.read_text()}"
            )
        return result.stdout

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.cli("status", "--json"))
        return data

    def stop(self) -> None:
        p = self.process
        if p is None:
            return
        stop_process(p)
        self.process = None


@contextlib.contextmanager
def secpath_daemon(ns: str, policy: Path, workdir: Path, *extra: str) -> Iterator[SecpathDaemon]:
    workdir.mkdir(parents=True, exist_ok=True)
    d = SecpathDaemon(ns, policy, workdir, *extra)
    d.start()
    try:
        yield d
    finally:
        d.stop()
