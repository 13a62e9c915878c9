"""strongSwan's charon in a network namespace, as an interop peer.

Debian's ``charon-systemd`` runs without systemd; each instance gets its own
``strongswan.conf``, vici socket and file log, and ESP runs in userspace
(``kernel-libipsec``: tunnel mode only, always ESP-in-UDP on 4500, no ESN).
The daemon is stopped by its own pid, even when the test fails.  Its log
holds key material (log levels ike=4, chd=4, for tshark key files): it stays
in the test's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns import run_in, stop_process, veth

CHARON = Path("/usr/sbin/charon-systemd")

needs_strongswan = pytest.mark.skipif(
    not CHARON.exists() and not os.environ.get("CI"),
    reason="strongSwan (charon-systemd, swanctl) is not installed and CI is unset; .ci/run installs it",
)

PLUGINS = (
    "random nonce openssl gmp aes sha1 sha2 hmac xcbc gcm chapoly curve25519 pem pkcs1 pkcs8 x509 pubkey kdf "
    "kernel-libipsec kernel-netlink socket-default vici"
)


class Charon:
    """One charon in namespace ``ns``, its files under ``workdir``."""

    def __init__(self, ns: str, workdir: Path, *, fwmark: int = 0x42) -> None:
        self.ns = ns
        self.dir = workdir
        self.fwmark = fwmark
        self.vici = workdir / "charon.vici"
        self.log = workdir / "charon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def conf(self) -> str:
        return f"""charon-systemd {{
  load = {PLUGINS}
  journal {{ default = -1 }}
  filelog {{ test {{ path = {self.log}
    time_format = %T
    ike_name = yes
    default = 1
    ike = 4
    chd = 4
    mgr = 2
    esp = 2
    knl = 2
    cfg = 2
    append = no
    flush_line = yes }} }}
  plugins {{
    vici {{ socket = unix://{self.vici} }}
    kernel-libipsec {{ allow_peer_ts = yes }}
    socket-default {{ fwmark = {self.fwmark:#x} }}
    kernel-netlink {{ fwmark = !{self.fwmark:#x} }}
  }}
}}
"""

    def start(self, timeout: float = 10.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "strongswan.conf"
        conf.write_text(self.conf())
        with contextlib.suppress(FileNotFoundError):
            self.vici.unlink()
        stdout = (self.dir / "stdout").open("wb")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, str(CHARON)],
            env={**os.environ, "STRONGSWAN_CONF": str(conf)},
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stdout.close()
        deadline = time.monotonic() + timeout
        while not self.vici.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "stdout").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"charon did not start in {self.ns}: {tail}")
            time.sleep(0.05)

    def swanctl(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        result = run_in(
            self.ns, ["swanctl", *args, "--uri", f"unix://{self.vici}"], check=False, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"swanctl {' '.join(args)} failed ({result.returncode}): {result.stdout}{result.stderr}"
            )
        return result.stdout + result.stderr

    def load(self, swanctl_conf: str) -> str:
        path = self.dir / "swanctl.conf"
        path.write_text(swanctl_conf)
        return self.swanctl("--load-all", "--noprompt", "--file", str(path))

    def stop(self) -> None:
        p = self.process
        if p is None:
            return
        stop_process(p)
        self.process = None


@contextlib.contextmanager
def charon(ns: str, workdir: Path) -> Iterator[Charon]:
    c = Charon(ns, workdir)
    c.start()
    try:
        yield c
    finally:
        c.stop()


PAIR_CONF = """connections {{
  t {{
    version = 2
    local_addrs = {local}
    remote_addrs = {remote}
    proposals = aes128-sha256-modp2048
    local {{
      auth = psk
      id = {me}
    }}
    remote {{
      auth = psk
      id = {peer}
    }}
    children {{
      net {{
        local_ts = {inner_local}/32
        remote_ts = {inner_remote}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
}}
secrets {{
  ike-t {{
    id-1 = a.test
    id-2 = b.test
    secret = "fixture-psk-not-secret"
  }}
}}
"""


@contextlib.contextmanager
def charon_pair(ns_a: str, ns_b: str, workdir: Path) -> Iterator[tuple[Charon, Charon]]:
    """Two charons joined by a veth (10.77.0.1 / .2), each with a protected
    host on lo (10.77.1.1 / 10.77.2.1) and a PSK tunnel ``net`` between
    them, configured but not yet initiated."""
    veth(ns_a, "10.77.0.1/24", ns_b, "10.77.0.2/24")
    run_in(ns_a, ["ip", "addr", "add", "10.77.1.1/32", "dev", "lo"])
    run_in(ns_b, ["ip", "addr", "add", "10.77.2.1/32", "dev", "lo"])
    with charon(ns_a, workdir / "a") as a, charon(ns_b, workdir / "b") as b:
        a.load(
            PAIR_CONF.format(
                local="10.77.0.1",
                remote="10.77.0.2",
                me="a.test",
                peer="b.test",
                inner_local="10.77.1.1",
                inner_remote="10.77.2.1",
            )
        )
        b.load(
            PAIR_CONF.format(
                local="10.77.0.2",
                remote="10.77.0.1",
                me="b.test",
                peer="a.test",
                inner_local="10.77.2.1",
                inner_remote="10.77.1.1",
            )
        )
        yield a, b


def have_strongswan() -> bool:
    return CHARON.exists() and shutil.which("swanctl") is not None
