"""CPU time per call, measured in-process by the bench scripts that need no wrk."""

import time


def cpu_microseconds(call, *, rounds: int, calls: int) -> float:
    """The fastest round's CPU time per call, in µs: the round least disturbed by other
    processes on the machine."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(calls):
            call()
        best = min(best, (time.process_time() - started) / calls * 1e6)
    return best
