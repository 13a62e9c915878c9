"""Planning cost from 10 to 1,000 servers (issue 7: 1,000 in under 5 s).

Each size is a generated topology (``secpath.plan.synthetic``): the duplexed
central controller, AW/HDS and Administration servers, PG pairs (every fifth
at a NAT'ed remote site) and Unified CMs.  Timed, best of several runs:

* ``load``: validation of the parsed topology document (``parse_topology``);
* ``plan``: every catalog path and every server's policy (``plan_deployment``);
* ``audit``: the plan audit (every policy, both ends of every path);
* ``plan total``: load + plan + audit — what "planning" means in the issue;
* ``export``: rendering every format in memory (secpath, netsh, PowerShell,
  swanctl, IOS), not counted in the total.

Printed with the cost per server relative to the 10-server baseline measured
in the same run.  Run: ``.venv/bin/python bench/bench_plan.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from secpath.plan.audit import audit_plan
from secpath.plan.planner import plan_deployment
from secpath.plan.synthetic import synthetic_topology
from secpath.plan.topology_loader import parse_topology
from secpath.plan.writer import build_output

SIZES = (10, 30, 100, 300, 1000)
LIMIT_S = 5.0
T = TypeVar("T")


def _best(fn: Callable[[], T], runs: int) -> tuple[float, T]:
    best = float("inf")
    result: T | None = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def main() -> None:
    rows: list[tuple[int, int, float, float, float, float, float]] = []
    for n in SIZES:
        doc = synthetic_topology(n)
        runs = 5 if n <= 100 else 2
        t_load, topology = _best(partial(parse_topology, doc), runs)
        t_plan, plan = _best(partial(plan_deployment, topology), runs)
        t_audit, _ = _best(partial(audit_plan, plan), runs)
        t_export, _ = _best(partial(build_output, plan), 1)
        rows.append((n, len(plan.paths), t_load, t_plan, t_audit, t_load + t_plan + t_audit,
                     t_export))
    base = rows[0][5] / rows[0][0]
    print(f"{'servers':>8} {'paths':>7} {'load s':>8} {'plan s':>8} {'audit s':>8} "
          f"{'plan total s':>13} {'per server vs 10':>17} {'export s':>9}")
    for n, paths, t_load, t_plan, t_audit, total, t_export in rows:
        print(f"{n:>8} {paths:>7} {t_load:>8.3f} {t_plan:>8.3f} {t_audit:>8.3f} {total:>13.3f} "
              f"{total / n / base:>16.2f}x {t_export:>9.3f}")
    largest = rows[-1]
    verdict = "within" if largest[5] < LIMIT_S else "OVER"
    print(f"\n{largest[0]} servers planned in {largest[5]:.2f} s: {verdict} the {LIMIT_S:.0f} s "
          "budget of issue 7")


if __name__ == "__main__":
    main()
