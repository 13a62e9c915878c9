"""Network namespaces for tests: created by the test, always removed.

Tests that need them are skipped only when not root *and* ``CI`` is unset
(CI runs as root and must run them).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import pytest

IS_ROOT = os.geteuid() == 0
IN_CI = bool(os.environ.get("CI"))

needs_root = pytest.mark.skipif(
    not IS_ROOT and not IN_CI,
    reason="needs root for network namespaces (not root and CI unset; CI runs these as root)",
)


def stop_process(p: subprocess.Popen[bytes]) -> None:
    """Stop a daemon started with ``start_new_session``: its process group,
    by its own pid; TERM, then KILL after 10 s."""
    if p.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=5)


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, poll: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return bool(predicate())


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=timeout)


def run_in(
    ns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run(["ip", "netns", "exec", ns, *argv], check=check, timeout=timeout)


@contextlib.contextmanager
def namespaces(*roles: str) -> Iterator[dict[str, str]]:
    """Fresh namespaces named ``sp-<role>-<random>``, loopback up; deleted on exit."""
    tag = uuid.uuid4().hex[:6]
    names = {role: f"sp-{role}-{tag}" for role in roles}
    created: list[str] = []
    try:
        for name in names.values():
            run(["ip", "netns", "add", name])
            created.append(name)
            run_in(name, ["ip", "link", "set", "lo", "up"])
        yield names
    finally:
        for name in created:
            # processes left in the namespace die with it only if killed: do so
            pids = run(["ip", "netns", "pids", name], check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            run(["ip", "netns", "del", name], check=False)


def veth(ns_a: str, addr_a: str, ns_b: str, addr_b: str, *, tag: str = "") -> None:
    """A veth pair between two namespaces with addresses (CIDR notation; IPv6
    ones without duplicate address detection, so they are usable at once)."""
    tag = tag or uuid.uuid4().hex[:4]
    a, b = f"va{tag}", f"vb{tag}"
    run(["ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b])
    for ns, dev, addr in ((ns_a, a, addr_a), (ns_b, b, addr_b)):
        run_in(ns, ["ip", "addr", "add", addr, "dev", dev, *(["nodad"] if ":" in addr else [])])
        run_in(ns, ["ip", "link", "set", dev, "up"])


def nat_router(
    inside_ns: str,
    inside_addr: str,
    router_ns: str,
    router_in: str,
    router_out: str,
    outside_ns: str,
    outside_addr: str,
) -> None:
    """``inside_ns`` behind a masquerading router namespace that also
    rewrites UDP source ports (so NAT-T port floating is really exercised).
    Addresses in CIDR notation; the inside host's default route is the router."""
    tag = uuid.uuid4().hex[:4]
    veth(inside_ns, inside_addr, router_ns, router_in, tag=f"i{tag}")
    veth(router_ns, router_out, outside_ns, outside_addr, tag=f"o{tag}")
    run_in(inside_ns, ["ip", "route", "add", "default", "via", router_in.split("/", maxsplit=1)[0]])
    run_in(router_ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    rules = f"""table ip nat {{
  chain post {{
    type nat hook postrouting priority srcnat;
    oifname "vao{tag}" meta l4proto udp masquerade to :40000-40999
    oifname "vao{tag}" masquerade
  }}
}}
"""
    subprocess.run(
        ["ip", "netns", "exec", router_ns, "nft", "-f", "-"],
        input=rules,
        text=True,
        check=True,
        capture_output=True,
    )
