"""Run the load publisher in several processes and report the achieved rate live."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
import time
from dataclasses import asdict, dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import SynchronizedArray

import msgspec

from simulators.load import Mix, Publisher, device_ids, schedule

KINDS = ("vitals", "status", "event", "acc")
SLOTS = 5 + len(KINDS)  # sent, acked, errors, one count per kind, first send, last ack (µs)


@dataclass(frozen=True, slots=True)
class LoadSpec:
    host: str
    port: int
    username: str
    password: str
    devices: int = 2000
    sites: int = 50
    prefix: str = "ld"
    messages: int = 100_000  # in total, over all processes
    rate: float = 0.0  # messages/s in total; 0 = as fast as the broker takes them
    processes: int = 2
    status: float = 0.05
    event: float = 0.05
    acc: float = 0.05


@dataclass(frozen=True, slots=True)
class LoadResult:
    sent: int
    acked: int
    errors: int
    seconds: float
    rate: float
    by_kind: dict[str, int]
    started_at: float = 0.0  # wall clock (epoch s) of the first send, 0 if unknown


def _child(spec: LoadSpec, index: int, shared: SynchronizedArray[int]) -> None:
    fleet = device_ids(spec.devices, spec.sites, spec.prefix)[index :: spec.processes]
    total = spec.messages // spec.processes + (index < spec.messages % spec.processes)
    rate = spec.rate / spec.processes
    pub = Publisher(
        spec.host, spec.port, spec.username, spec.password, f"load-{spec.prefix}-{index}"
    )
    mix = Mix(spec.status, spec.event, spec.acc)

    async def report() -> None:
        while True:
            _store(shared, index, pub)
            await asyncio.sleep(0.2)

    async def main() -> None:
        task = asyncio.create_task(report())
        try:
            await pub.run(schedule(fleet, mix, total), rate)
        finally:
            task.cancel()
            _store(shared, index, pub)

    asyncio.run(main())


def _store(shared: SynchronizedArray[int], index: int, pub: Publisher) -> None:
    c = pub.counters
    row = [c.sent, c.acked, c.errors, *(c.by_kind.get(k, 0) for k in KINDS)]
    row += [c.first_sent_us, c.last_ack_us]
    shared[index * SLOTS : (index + 1) * SLOTS] = row


def _sums(shared: SynchronizedArray[int], processes: int) -> list[int]:
    return [sum(shared[p * SLOTS + j] for p in range(processes)) for j in range(SLOTS)]


def start_load(spec: LoadSpec) -> tuple[list[BaseProcess], SynchronizedArray[int]]:
    """Start the publisher processes; :func:`acked` reads their progress. Terminating them is
    how a caller stops a load it no longer needs (bench.dispatch_latency)."""
    ctx = mp.get_context("spawn")
    shared: SynchronizedArray[int] = ctx.Array("q", SLOTS * spec.processes)
    procs: list[BaseProcess] = [
        ctx.Process(target=_child, args=(spec, i, shared), daemon=True)
        for i in range(spec.processes)
    ]
    for p in procs:
        p.start()
    return procs, shared


def acked(shared: SynchronizedArray[int], processes: int) -> int:
    """Messages the broker has acknowledged so far, over all publisher processes."""
    return _sums(shared, processes)[1]


def run_load(spec: LoadSpec, *, live: bool = True) -> LoadResult:
    started = time.monotonic()
    procs, shared = start_load(spec)
    last = (started, 0)
    while any(p.is_alive() for p in procs):
        deadline = last[0] + 1.0  # a progress line a second, and no wait once all are done
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        now = time.monotonic()
        sums = _sums(shared, spec.processes)
        if live:
            rate = (sums[1] - last[1]) / max(now - last[0], 1e-6)
            print(
                f"load: sent {sums[0]} acked {sums[1]} errors {sums[2]} ({rate:,.0f} msg/s)",
                file=sys.stderr,
                flush=True,
            )
        last = (now, sums[1])
    sums = _sums(shared, spec.processes)
    # The rate is over the publishing itself (first send to last ack of all processes), not
    # process start-up: a paced run of 5,000 msg/s reports 5,000.
    n = len(KINDS)
    firsts = [shared[p * SLOTS + 3 + n] for p in range(spec.processes)]
    lasts = [shared[p * SLOTS + 4 + n] for p in range(spec.processes)]
    started_at = min(firsts) / 1e6 if all(firsts) else 0.0
    if started_at and all(lasts):
        elapsed = max(lasts) / 1e6 - started_at
    else:
        elapsed = time.monotonic() - started
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise RuntimeError(f"load publisher processes failed: exit codes {failed}")
    return LoadResult(
        sums[0],
        sums[1],
        sums[2],
        elapsed,
        sums[1] / elapsed,
        dict(zip(KINDS, sums[3 : 3 + n], strict=True)),
        started_at,
    )


def result_json(result: LoadResult) -> str:
    return msgspec.json.encode(asdict(result)).decode()
