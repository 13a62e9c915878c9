"""Where one x25519+PSK IKEv2 handshake goes (issue 4), as shares of it.

Times, in one process and alternating (best of several rounds each), a full
handshake (as :mod:`bench_ike` does, ``gc.freeze()`` after set-up) and its
parts measured alone with the engines' own code:

* public-key: both X25519 key generations and exchanges (``bench_ike``'s bound);
* symmetric: ``bench_ike``'s ``sym`` column (prf/prf+, AUTH MACs, SK ciphers,
  the two sealed IKE_AUTH messages, NAT_DETECTION hashes);
* codec: decoding and encoding the handshake's four messages, minus the SK
  sealing and opening inside them (already in ``symmetric``);
* gc: the collector's time during the handshakes (gc callbacks, mean);
* the rest: engine logic and object construction.

Each line is microseconds and the share of the handshake.  To compare two
trees, run it alternately with each on ``PYTHONPATH``: the machine's load
moves absolute times far more than the shares.

Run: ``.venv/bin/python -m bench ike_parts`` (it imports ``bench.bench_ike``).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any

from bench.bench_ike import NOW, A, B, _config, _dh_cost, _handshake, _symmetric_cost
from secpath.crypto.sk import SkCipher
from secpath.ike.config import Credentials
from secpath.ike.engine import IkeEngine
from secpath.ike.message import Message, decode_message, encode_message
from secpath.policy.model import KeyExchangeMethod, SecurityMethod
from secpath.secret import Secret

ROUNDS = 7


def _messages(cfg_a: Any, cfg_b: Any) -> list[tuple[bytes, SkCipher | None, SkCipher | None]]:
    """The four datagrams of one handshake, each with the cipher that opens
    it and the one that seals it (None for IKE_SA_INIT)."""
    a, b = IkeEngine([cfg_a], os.urandom), IkeEngine([cfg_b], os.urandom)
    grams: list[bytes] = []
    a.initiate("path", NOW)
    for step in range(4):
        src, dst, addr = (a, b, A) if step % 2 == 0 else (b, a, B)
        for d in src.datagrams_to_send():
            grams.append(d.data)
            dst.receive_datagram(d.data, (addr, d.source_port), NOW, local_port=d.destination[1])
    sa_a, sa_b = next(iter(a._sas.values())), next(iter(b._sas.values()))
    return [(grams[0], None, None), (grams[1], None, None),
            (grams[2], sa_b.sk_in, sa_a.sk_out), (grams[3], sa_a.sk_in, sa_b.sk_out)]


def main() -> None:
    psk = Credentials(psk=Secret(os.urandom(32)))
    method = KeyExchangeMethod("sha256", "chacha20poly1305", 31)
    esp = SecurityMethod("chacha20poly1305", "none")
    cfg_a, cfg_b = _config(A, B, method, esp, psk), _config(B, A, method, esp, psk)
    grams = _messages(cfg_a, cfg_b)
    decoded: list[Message] = [decode_message(g, opener) for g, opener, _ in grams]

    def codec() -> None:
        for (data, opener, sealer), message in zip(grams, decoded, strict=True):
            decode_message(data, opener)
            encode_message(message, sealer, os.urandom)

    def sk_only() -> None:
        for data, opener, sealer in grams[2:]:
            assert opener is not None and sealer is not None
            opener.open(data[:32], data[32:])
            sealer.seal(data[:32], data[32:-40], os.urandom)

    engines: list[tuple[IkeEngine, IkeEngine]] = []
    done = [0]

    def handshake() -> None:
        if done[0] % 50 == 0:  # a fresh pair now and then, as bench_ike does
            engines.append((IkeEngine([cfg_a], os.urandom), IkeEngine([cfg_b], os.urandom)))
        done[0] += 1
        _handshake(*engines[-1])

    parts: dict[str, tuple[Callable[[], None], int]] = {
        "handshake": (handshake, 200),
        "public-key": (_dh_cost(31), 200),
        "symmetric": (_symmetric_cost("sha256", "chacha20poly1305", None, esp, psk.psk), 200),
        "codec": (codec, 500),
        "sk": (sk_only, 500),
    }
    gc.freeze()  # as bench_ike and the daemon
    collecting = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[1] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - collecting[1]

    gc.callbacks.append(on_gc)
    best = dict.fromkeys(parts, float("inf"))
    gc_time, handshakes = 0.0, 0
    for _ in range(ROUNDS):
        for name, (fn, rounds) in parts.items():
            before = collecting[0]
            start = time.perf_counter()
            for _ in range(rounds):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / rounds)
            if name == "handshake":
                gc_time += collecting[0] - before
                handshakes += rounds
    gc.callbacks.remove(on_gc)
    total = best["handshake"]
    rows = {
        "handshake": total,
        "public-key": best["public-key"],
        "symmetric": best["symmetric"],
        "codec (no SK crypto)": best["codec"] - best["sk"],
        "gc (mean)": gc_time / handshakes,
    }
    rows["the rest"] = total - sum(v for k, v in rows.items() if k != "handshake")
    for name, seconds in rows.items():
        print(f"{name:<22} {seconds * 1e6:8.1f} us {seconds / total:7.1%}")


if __name__ == "__main__":
    main()
