"""How fast the machine runs right now, for reading a benchmark's figures (imported by the benches).

The shared VM these benchmarks run on changes speed by 1.6 to 2 times within an hour with nothing
else running; the same request then costs that much more CPU. A fixed pure-Python workload, timed as
CPU of this process (best of 5, so a preemption doesn't count), shows which phase a run was in.
"""

from __future__ import annotations

import json
import math
import time


def cpu_probe() -> float:
    """Milliseconds of CPU for the fixed workload: about 11 in the machine's faster phase."""
    best = math.inf
    for _ in range(5):
        start = time.process_time()
        total = 0
        for i in range(150_000):
            total += i % 7
        json.loads(json.dumps({"rows": [{"id": i, "subject": f"Ticket {i}"} for i in range(300)]}))
        best = min(best, time.process_time() - start)
    return best * 1000
