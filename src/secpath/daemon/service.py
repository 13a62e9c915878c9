"""The secpath daemon: a policy made real on this host.

It owns all I/O: one policy agent per local address with its IKE sockets
(UDP 500 and 4500, marked so they bypass the protected routes), a raw
socket for ESP (IP protocol 50) and for packets sent in clear, the TUN
device that protected traffic is routed into (as strongSwan's
``kernel-libipsec`` does), and the control socket.  Everything it adds to
the kernel is removed on exit, and a crashed run's leftovers at the next
start.  IPv4 and IPv6: each local address gets sockets of its family
(``secpath.daemon.sockets``), and the remote sides of IPv6 rules are routed
into the TUN device as the IPv4 ones are.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import ipaddress
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from secpath.agent import AgentEvent, Outgoing, PolicyAgent
from secpath.agent.split import split_policy
from secpath.agent.status import agent_keys, agent_status
from secpath.daemon.control import ControlServer
from secpath.daemon.driver import AgentDriver
from secpath.daemon.firewall import Firewall
from secpath.daemon.netsetup import NetSetup, RoutingConfig
from secpath.daemon.sockets import RawSockets, udp_socket
from secpath.daemon.tun import TunDevice
from secpath.errors import LocalError
from secpath.ike.config import Timing
from secpath.monitor.metrics import MetricsServer
from secpath.monitor.oakley import LogRecord, NegotiationLog
from secpath.monitor.stats import Statistics
from secpath.policy.loader import load_policy
from secpath.policy.model import AddressKind, Behavior, IpNetwork, Policy

__all__ = ["Daemon", "DaemonOptions"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    control: Path
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    tun_name: str = "secpath0"
    mtu: int = 1400
    ike_port: int = 500
    nat_t_port: int = 4500
    force_udp_encapsulation: bool = False
    nat_keepalive: float = 20.0  # seconds between NAT keepalives from behind a NAT (RFC 3948 §2.3)
    timing: Timing = field(default_factory=Timing)


@dataclass(slots=True)
class _Host:
    """One local address: its agent, driver and sockets."""

    address: str
    policy: Policy
    agent: PolicyAgent
    driver: AgentDriver
    sockets: dict[int, socket.socket] = field(default_factory=dict)  # agent port -> UDP socket
    routes: list[IpNetwork] = field(default_factory=list)


class Daemon:
    def __init__(self, policy_path: Path, options: DaemonOptions) -> None:
        self.policy_path = policy_path
        self.options = options
        self.policy: Policy | None = None
        self.hosts: dict[str, _Host] = {}
        self._by_packed: dict[bytes, _Host] = {}
        self.started = time.time()
        self.loaded_at = 0.0
        self._stop = asyncio.Event()
        self._net: NetSetup | None = None
        self._tun: TunDevice | None = None
        self._raw: dict[int, RawSockets] = {}  # IP version -> its raw sockets
        self._control: ControlServer | None = None
        self.events: list[dict[str, Any]] = []  # recent agent events, for status
        self._netlink_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netlink")
        self.log: NegotiationLog | None = None
        self._firewall: Firewall | None = None
        self.metrics: MetricsServer | None = None

    # -- lifecycle -------------------------------------------------------------

    async def run(self) -> None:
        """Start, serve until ``down`` or a signal, and clean up whatever happens."""
        policy = load_policy(self.policy_path)  # refuse to start on an invalid policy
        loop = asyncio.get_running_loop()
        self._control = ControlServer(self.options.control, self._handlers())
        await self._control.start()  # refuses a live socket before touching the network
        try:
            self._net = await self._netlink(NetSetup, self.options.routing)
            await self._netlink(self._net.cleanup)  # what a crashed run left behind
            self._tun = TunDevice(self.options.tun_name)
            await self._netlink(self._net.link_up, self._tun.name, self.options.mtu)
            _sysctl(f"net/ipv4/conf/{self._tun.name}/rp_filter", "0")
            for key in ("accept_ra", "autoconf", "router_solicitations"):
                _sysctl(f"net/ipv6/conf/{self._tun.name}/{key}", "0")
            await self._netlink(self._net.install_rules)
            self._firewall = Firewall()
            self._firewall.remove()  # a crashed run's table
            mark = self.options.routing.fwmark
            for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
                try:
                    raw = RawSockets(family, mark)
                except OSError as exc:
                    if version == 4:
                        raise
                    detail = f"no IPv6 raw sockets ({exc.strerror}): ESP over IPv6 is off"
                    self.events.append(
                        {"time": time.time(), "kind": "ipv6", "rule": None, "peer": None, "detail": detail}
                    )
                    continue
                self._raw[version] = raw
                loop.add_reader(raw.fileno(), self._esp_readable, raw)
            loop.add_reader(self._tun.fd, self._tun_readable)
            await self._load(policy)
            settings = policy.monitor
            if settings.log_file is not None and settings.log_level:
                self._open_log(settings.log_file, settings.log_level)
            if settings.prometheus is not None:
                try:
                    self.metrics = MetricsServer(settings.prometheus)
                except OSError as exc:
                    raise LocalError(
                        f"cannot serve metrics on {settings.prometheus}: {exc.strerror}"
                    ) from None
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stop.set)
            # what start-up made (modules, the policy, agents, sockets) lives as
            # long as the daemon: out of the collector's reach, a full collection
            # scans only what came after (the SAs); bench_ike measures the same
            gc.freeze()
            publisher = asyncio.create_task(self._publish_metrics())
            await self._stop.wait()
            publisher.cancel()
        finally:
            await self._teardown()

    async def _publish_metrics(self) -> None:
        while True:
            if self.metrics is not None:
                self.metrics.publish(self.snapshot())
            await asyncio.sleep(0.5)

    async def _teardown(self) -> None:
        loop = asyncio.get_running_loop()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.close)
        self._close_log()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await self._unload(graceful=True)
        if self._tun is not None:
            loop.remove_reader(self._tun.fd)
            self._tun.close()
            self._tun = None
        for raw in self._raw.values():
            loop.remove_reader(raw.fileno())
            raw.close()
        self._raw = {}
        if self._firewall is not None:
            self._firewall.remove()
        if self._net is not None:
            await self._netlink(self._net.cleanup)
            await self._netlink(self._net.close)
        self._netlink_thread.shutdown(wait=True)
        if self._control is not None:
            await self._control.close()

    async def _netlink(self, fn: Callable[..., T], *args: Any) -> T:
        """pyroute2's IPRoute runs its own event loop: keep it on one thread of its own."""
        return await asyncio.get_running_loop().run_in_executor(self._netlink_thread, fn, *args)

    async def _load(self, policy: Policy) -> None:
        loop = asyncio.get_running_loop()
        assert self._net is not None and self._tun is not None
        hosts: dict[str, _Host] = {}
        try:
            for address, sub in split_policy(policy).items():
                agent = PolicyAgent(
                    sub,
                    _rng,
                    timing=self.options.timing,
                    local_address=address,
                    force_udp_encapsulation=self.options.force_udp_encapsulation,
                    keepalive_interval=self.options.nat_keepalive,
                )
                sockets: dict[int, socket.socket] = {}
                driver = AgentDriver(
                    agent, self._sender(agent, sockets), self._deliver, self._on_event, loop=loop
                )
                host = _Host(address, sub, agent, driver, sockets)
                hosts[address] = host
                for agent_port, port in ((500, self.options.ike_port), (4500, self.options.nat_t_port)):
                    sock = udp_socket(address, port, self.options.routing.fwmark)
                    sockets[agent_port] = sock
                    loop.add_reader(sock.fileno(), self._udp_readable, host, sock, agent_port)
                host.routes = _routes(sub)
                await self._netlink(self._net.add_routes, self._tun.name, host.routes)
        except (LocalError, OSError):
            for host in hosts.values():
                _close_host(host)
                await self._netlink(self._net.remove_routes, host.routes)
            raise
        if self._firewall is not None:
            try:
                self._firewall.apply(
                    [policy],
                    tun=self._tun.name,
                    fwmark=self.options.routing.fwmark,
                    ports=(self.options.ike_port, self.options.nat_t_port),
                )
            except LocalError:
                for host in hosts.values():
                    _close_host(host)
                    await self._netlink(self._net.remove_routes, host.routes)
                raise
        self.hosts = hosts
        self._by_packed = {ipaddress.ip_address(a).packed: h for a, h in hosts.items()}
        self.policy = policy
        self.loaded_at = time.time()
        for host in hosts.values():
            host.agent.trace_level = self.log.level if self.log is not None else 0
            host.agent.start_rules(time.time())
            host.driver.flush()

    async def _unload(self, *, graceful: bool) -> None:
        if graceful:
            for host in self.hosts.values():
                host.driver.terminate(None)  # send Delete for every IKE SA
            if any(h.agent.children for h in self.hosts.values()):
                await asyncio.sleep(0.2)  # let the deletes leave
        for host in self.hosts.values():
            _close_host(host)
            if self._net is not None:
                await self._netlink(self._net.remove_routes, host.routes)
        self.hosts = {}
        self._by_packed = {}

    # -- data path -------------------------------------------------------------

    def _sender(self, agent: PolicyAgent, sockets: dict[int, socket.socket]) -> Callable[[Outgoing], None]:
        def send(out: Outgoing) -> None:
            try:
                if out.source_port:
                    sock = sockets.get(out.source_port)
                    if sock is not None:
                        port = out.destination[1]
                        if port == 500:
                            port = self.options.ike_port
                        elif port == 4500:
                            port = self.options.nat_t_port
                        sock.sendto(out.data, (out.destination[0], port))
                else:
                    raw = self._raw.get(out.data[0] >> 4) if out.data else None
                    if raw is not None:
                        raw.send(out.data, out.destination[0])
            except OSError:
                agent.stats.inc("main_mode", "send_failures")

        return send

    def _deliver(self, packet: bytes) -> None:
        if self._tun is not None:
            try:
                self._tun.write(packet)
            except OSError:
                return

    def _tun_readable(self) -> None:
        assert self._tun is not None
        touched: set[str] = set()
        for _ in range(64):  # a batch per wake-up, one flush per host at the end
            packet = self._tun.read()
            if packet is None:
                break
            host = self._host_for(packet)
            if host is not None:
                host.driver.packet_from_host(packet, flush=False)
                touched.add(host.address)
        for address in touched:
            host = self.hosts.get(address)
            if host is not None:
                host.driver.flush()

    def _udp_readable(self, host: _Host, sock: socket.socket, local_port: int) -> None:
        for _ in range(64):
            try:
                data, source = sock.recvfrom(65535)
            except BlockingIOError:
                break
            except OSError:
                host.agent.stats.inc("main_mode", "receive_failures")
                break
            port = source[1]
            if port == self.options.ike_port:
                port = 500
            elif port == self.options.nat_t_port:
                port = 4500
            host.driver.datagram(data, (source[0], port), local_port, flush=False)
        host.driver.flush()

    def _esp_readable(self, raw: RawSockets) -> None:
        for local, packet in raw.receive():
            host = self._by_packed.get(local)
            if host is not None:
                host.driver.packet_from_network(packet)

    def _host_for(self, packet: bytes) -> _Host | None:
        """The host (local address) that sends ``packet`` from the TUN device:
        the one of its source address, else the first of its family.  IPv6
        multicast and link-local packets (the kernel's own neighbour and
        listener chatter on the device) belong to none."""
        if len(packet) >= 20 and packet[0] >> 4 == 4:
            source = packet[12:16]
        elif len(packet) >= 40 and packet[0] >> 4 == 6:
            link_local = packet[8] == 0xFE and packet[9] & 0xC0 == 0x80  # fe80::/10
            if packet[24] == 0xFF or link_local or packet[8:24] == bytes(16):
                return None
            source = packet[8:24]
        else:
            return None
        host = self._by_packed.get(source)
        if host is not None:
            return host
        size = len(source)
        return next((h for p, h in self._by_packed.items() if len(p) == size), None)

    def _on_event(self, event: AgentEvent) -> None:
        if self.log is not None:
            level = 2 if event.kind in ("ike-in", "ike-out", "dropped") else 1
            ike_sa = event.ike_sa
            ike_event = event.ike_event
            if ike_sa is None and ike_event is not None and hasattr(ike_event, "ike_sa"):
                ike_sa = f"{ike_event.ike_sa:016x}"
            self.log.write(
                LogRecord(
                    time.time(),
                    level,
                    event.kind,
                    event.detail,
                    event.rule,
                    event.peer,
                    ike_sa,
                    event.exchange,
                    event.message_id,
                    "in" if event.kind == "ike-in" else "out" if event.kind == "ike-out" else None,
                )
            )
        if event.kind in ("ike-in", "ike-out"):
            return
        self.events.append(
            {
                "time": time.time(),
                "kind": event.kind,
                "rule": event.rule,
                "peer": event.peer,
                "detail": event.detail,
            }
        )
        del self.events[:-200]

    # -- control ---------------------------------------------------------------

    def _handlers(self) -> Mapping[str, Any]:
        return {
            "status": self._status,
            "stats": self._stats,
            "initiate": self._initiate,
            "terminate": self._terminate,
            "rekey": self._rekey,
            "reload": self._reload,
            "down": self._down,
            "log": self._log,
            "keys": self._keys,
        }

    async def _status(self, args: Mapping[str, Any]) -> Any:
        now = time.time()
        if self.policy is None:
            raise LocalError("the daemon is starting: its policy is not applied yet")
        return {
            "policy": {
                "name": self.policy.name,
                "description": self.policy.description,
                "file": str(self.policy_path),
                "loaded_at": self.loaded_at,
            },
            "uptime_s": round(now - self.started, 1),
            "hosts": [agent_status(h.agent, now) for h in self.hosts.values()],
            "events": self.events[-50:],
        }

    def snapshot(self) -> dict[str, Any]:
        """All hosts' statistics added up, with rule states and SA counts."""
        total = Statistics()
        for host in self.hosts.values():
            s = host.agent.stats
            for k, v in s.main_mode.items():
                total.main_mode[k] += v
            for k, v in s.quick_mode.items():
                total.quick_mode[k] += v
            for name, t in s.rules.items():
                total.rules[name] = t
        snap = total.snapshot()
        for host in self.hosts.values():
            for rule in host.policy.rules:
                if rule.filter_action.behavior is Behavior.NEGOTIATE and rule.name in snap["rules"]:  # type: ignore[operator]
                    snap["rules"][rule.name]["state"] = host.agent.rule_state(rule.name).value  # type: ignore[index]
        snap["ike_sas"] = sum(len(h.agent.ike_sas) for h in self.hosts.values())
        snap["child_sas"] = sum(len(h.agent.children) for h in self.hosts.values())
        return snap

    async def _stats(self, args: Mapping[str, Any]) -> Any:
        snap = self.snapshot()
        if args.get("reset"):
            for host in self.hosts.values():
                host.agent.stats.reset()
        return snap

    async def _keys(self, args: Mapping[str, Any]) -> Any:
        """Key material of every live SA, for Wireshark (the control socket is 0600)."""
        ike_rows: list[str] = []
        esp_rows: list[str] = []
        ikev1_rows: list[str] = []
        for host in self.hosts.values():
            ike, esp, ikev1 = agent_keys(host.agent)
            ike_rows += ike
            esp_rows += esp
            ikev1_rows += ikev1
        if self.log is not None:
            self.log.write(LogRecord(time.time(), 1, "keys", f"keys of {len(esp_rows)} ESP SA(s) exported"))
        return {"ikev2_decryption_table": ike_rows, "esp_sa": esp_rows, "ikev1_decryption_table": ikev1_rows}

    async def _log(self, args: Mapping[str, Any]) -> Any:
        action = args.get("action", "where")
        if action == "enable":
            level = int(args.get("level", 1))
            if not 1 <= level <= 3:
                raise LocalError(f"log level {level}: expected 1 (events), 2 (messages) or 3 (payloads)")
            path = Path(str(args["file"])) if args.get("file") else self._log_path()
            self._open_log(path, level)
        elif action == "disable":
            self._close_log()
        elif action != "where":
            raise LocalError(f"log action {action!r}: expected enable, disable or where")
        return {
            "enabled": self.log is not None,
            "file": str(self.log.path if self.log else self._log_path()),
            "level": self.log.level if self.log else 0,
        }

    def _log_path(self) -> Path:
        settings = self.policy.monitor if self.policy is not None else None
        if settings is not None and settings.log_file is not None:
            return settings.log_file
        return self.options.control.with_name("negotiation.log")

    def _open_log(self, path: Path, level: int) -> None:
        self._close_log()
        settings = self.policy.monitor if self.policy is not None else None
        self.log = NegotiationLog(
            path,
            level,
            max_bytes=settings.log_max_bytes if settings else 10 << 20,
            backups=settings.log_backups if settings else 3,
        )
        for host in self.hosts.values():
            host.agent.trace_level = level
        self.log.write(LogRecord(time.time(), 1, "log", f"negotiation log enabled at level {level}"))

    def _close_log(self) -> None:
        if self.log is not None:
            self.log.write(LogRecord(time.time(), 1, "log", "negotiation log disabled"))
            self.log.close()
            self.log = None
        for host in self.hosts.values():
            host.agent.trace_level = 0

    async def _initiate(self, args: Mapping[str, Any]) -> Any:
        rule = str(args.get("rule", ""))
        for host in self.hosts.values():
            if any(r.name == rule for r in host.policy.rules):
                host.driver.initiate(rule)
                return {"initiated": rule, "from": host.address}
        raise LocalError(f"no rule {rule!r} in the running policy")

    async def _terminate(self, args: Mapping[str, Any]) -> Any:
        rule = args.get("rule")
        if rule is not None and not any(r.name == rule for h in self.hosts.values() for r in h.policy.rules):
            raise LocalError(f"no rule {rule!r} in the running policy")
        return {"deleted_ike_sas": sum(h.driver.terminate(rule) for h in self.hosts.values())}

    async def _rekey(self, args: Mapping[str, Any]) -> Any:
        rule = str(args.get("rule", ""))
        if not any(r.name == rule for h in self.hosts.values() for r in h.policy.rules):
            raise LocalError(f"no rule {rule!r} in the running policy")
        ike = bool(args.get("ike", False))
        n = sum(h.driver.rekey(rule, ike=ike) for h in self.hosts.values())
        if n == 0:
            raise LocalError(f"rule {rule!r} has no SA to rekey (is it up?)")
        return {"rekeying": n, "what": "IKE SA" if ike else "Child SA"}

    async def _reload(self, args: Mapping[str, Any]) -> Any:
        path = Path(str(args.get("policy", self.policy_path)))
        policy = load_policy(path)  # an invalid policy is refused; the running one stays
        old = self.policy
        await self._unload(graceful=True)
        try:
            await self._load(policy)
        except (LocalError, OSError) as exc:
            assert old is not None
            await self._load(old)
            raise LocalError(f"{path}: cannot apply ({exc}); the previous policy runs again") from None
        self.policy_path = path
        return {"loaded": str(path), "rules": len(policy.rules)}

    async def _down(self, args: Mapping[str, Any]) -> Any:
        self._stop.set()
        return {"stopping": True}


def _rng(n: int) -> bytes:
    import os

    return os.urandom(n)


def _routes(policy: Policy) -> list[IpNetwork]:
    """The destinations to route into the TUN device: the remote side of
    every negotiate rule's filters (tunnel mode: the remote subnets;
    transport mode: the peer)."""
    local = set(policy.local.addresses)
    out: list[IpNetwork] = []
    for rule in policy.rules:
        if rule.filter_action.behavior is not Behavior.NEGOTIATE:
            continue
        for f in rule.filter_list.filters:
            # a filter is written from this host's side, unless it points at
            # "me" or one of our addresses (as secpath.ike.selectors reads it)
            dst = f.destination
            towards_us = dst.kind is AddressKind.ME or (
                dst.network is not None and dst.is_host and dst.network.network_address in local
            )
            remote = f.source if towards_us and f.source.kind is not AddressKind.ME else dst
            if (
                remote.kind is AddressKind.NETWORK
                and remote.network is not None
                and remote.network not in out
            ):
                out.append(remote.network)
    return out


def _close_host(host: _Host) -> None:
    host.driver.close()
    loop = asyncio.get_running_loop()
    for sock in host.sockets.values():
        loop.remove_reader(sock.fileno())
        sock.close()


def _sysctl(key: str, value: str) -> None:
    with contextlib.suppress(OSError):
        Path("/proc/sys", key).write_text(value)
