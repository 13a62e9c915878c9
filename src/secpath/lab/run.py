"""``secpath lab``'s main job: start the lab, negotiate every path, send
traffic through every SA, probe with clear text, report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from secpath.lab.lab import Lab, Progress
from secpath.lab.results import LabOptions, LabResult, PathResult
from secpath.lab.topology import load_lab_topology, reference_topology
from secpath.plan.topology import Topology

__all__ = ["LabOptions", "LabResult", "PathResult", "load_lab_topology", "reference_topology", "run_lab"]


async def run_lab(
    topology: Topology,
    options: LabOptions | None = None,
    progress: Progress | None = None,
    on_ready: Callable[[LabResult], Awaitable[None]] | None = None,
) -> LabResult:
    """Run the lab; ``on_ready`` (if given) is awaited with the result while
    the hosts are still up (``secpath lab --keep``)."""
    options = options or LabOptions()
    lab = Lab(topology, options, progress)
    try:
        await lab.start()
        await lab.negotiate()
        until = time.monotonic() + options.duration
        rounds = 0
        while True:
            lab.send_round()
            rounds += 1
            lab.report("traffic", rounds, rounds)
            if time.monotonic() >= until:
                break
            await asyncio.sleep(0.2)
        await lab.settle()
        lab.probe_clear()
        result = lab.result()
        if on_ready is not None:
            await on_ready(result)
        return result
    finally:
        lab.close()
