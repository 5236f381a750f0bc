#!/usr/bin/env python
"""Webhook delivery benchmark: deliveries per second, commit → first attempt latency, and eventual
delivery when the receiver fails 20 % of requests.

    export DATABASE_URL=postgres://postgres@127.0.0.1:55432/helper_webhooks_bench REDIS_URL=redis://127.0.0.1:56379/0 REDIS_DB=9
    .venv/bin/python bench/webhooks_bench.py --setup        # create + migrate the bench database, then run
    .venv/bin/python bench/webhooks_bench.py                # run (wipes the bench database's webhook/event rows)

What runs: real ``celery -A portal worker`` processes and ``celery -A portal beat`` (the sweeper every
0.5 s) against the bench database and Redis, settings ``bench.webhooks_settings`` (the project's plus
webhooks', with a compressed retry schedule). The driver publishes events with ``portal.events.publish``
inside transactions, exactly as services do; the receiver is ``webhooks/tests/receiver.py`` running in a
process of its own on 127.0.0.1 (one URL path per endpoint), recording every request it answers.

Phases:
1. latency: one event type that one endpoint subscribes to, at a low rate; commit → first attempt per
   message (the commit time is stamped by an on_commit hook registered before the event's own).
2. throughput: 100 endpoints all subscribed; events published at a steady rate for a fixed time, every
   event fanning out to 100 deliveries; deliveries/s at the receiver over the publishing window, and
   commit → first attempt per delivery.
3. failures: the receiver answers 503 to 20 % of requests at random; every message must be delivered
   (2xx at the receiver for every (endpoint, webhook-id)); duplicates are counted.

Never point it at a database you care about: it TRUNCATEs the webhook and event tables of DATABASE_URL.
"""

# ruff: noqa: S311, S603
# S311: random only decides which requests fail; S603: subprocesses of our own.
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SETTINGS = "bench.webhooks_settings"

# --- The receiver, in a process of its own -----------------------------------------------------------


def _receiver_main(conn, ready) -> None:
    from webhooks.tests.receiver import Receiver, Reply

    lock = threading.Lock()
    records: list[tuple[float, str, str, int]] = []
    state = {"fail": 0.0, "rng": random.Random(20260101)}

    def respond(request):
        with lock:
            fail = state["rng"].random() < state["fail"]
        status = 503 if fail else 200
        with lock:
            records.append((time.time(), request.path, request.header("webhook-id") or "", status))
        return Reply(status=status)

    with Receiver(default=respond, backlog=2048, io_timeout=15) as receiver:
        ready.send(receiver.port)
        while True:
            command, arg = conn.recv()
            if command == "fail":
                with lock:
                    state["fail"] = arg
                conn.send(True)
            elif command == "dump":
                with lock:
                    conn.send(list(records))
                    records.clear()
            elif command == "stop":
                conn.send(True)
                return


class RemoteReceiver:
    def __init__(self) -> None:
        context = mp.get_context("fork")  # before Django is imported in this process
        self.conn, child = context.Pipe()
        ready_parent, ready_child = context.Pipe()
        self.process = context.Process(target=_receiver_main, args=(child, ready_child), daemon=True)
        self.process.start()
        self.port = ready_parent.recv()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def call(self, command: str, arg=None):
        self.conn.send((command, arg))
        return self.conn.recv()

    def stop(self) -> None:
        self.call("stop")
        self.process.join(5)


# --- Processes ---------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": SETTINGS, "LOG_LEVEL": "WARNING"}


def setup_database() -> None:
    url = os.environ["DATABASE_URL"]
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    import psycopg

    admin = urlunsplit((parts.scheme.replace("postgres", "postgresql"), parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=_env(), check=True)


class Celery:
    def __init__(self, log_dir: Path, workers: int, concurrency: int, pool: str) -> None:
        self.processes: list[subprocess.Popen] = []
        base = [sys.executable, "-m", "celery", "-A", "portal"]
        for index in range(workers):
            command = [*base, "worker", "-n", f"bench{index}@%h", "-P", pool, "-c", str(concurrency), "-l", "WARNING"]
            command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
            self._start(command, log_dir / f"worker{index}.log")
        self._start([*base, "beat", "-l", "WARNING", "-s", str(log_dir / "beat-schedule")], log_dir / "beat.log")

    def _start(self, command: list[str], log: Path) -> None:
        with open(log, "wb") as out:
            self.processes.append(subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


# --- CPU accounting (shared machines: wall-clock rates depend on the neighbours) ----------------------


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(roots: list[int]) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(roots), list(roots)
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


class CpuMeter:
    """CPU seconds of the workers and beat (with their children), the receiver, this driver and our
    PostgreSQL backends between start() and stop(). Backends come and go (CONN_MAX_AGE), so they are
    sampled every 0.5 s and each one's growth is summed."""

    def __init__(self, celery: Celery, receiver: RemoteReceiver) -> None:
        self.celery, self.receiver = celery, receiver
        self.backend_first: dict[int, float] = {}
        self.backend_last: dict[int, float] = {}
        self.stopping = threading.Event()

    def _backends(self, conn) -> None:
        for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()").fetchall():
            cpu = _proc_cpu(pid)
            self.backend_first.setdefault(pid, cpu if self.started else 0.0)
            self.backend_last[pid] = max(cpu, self.backend_last.get(pid, 0.0))

    def _loop(self) -> None:
        import psycopg
        from django.conf import settings

        db = settings.DATABASES["default"]
        with psycopg.connect(
            host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None, dbname=db["NAME"], autocommit=True
        ) as conn:
            self.started = False
            self._backends(conn)
            self.started = True
            self.ready.set()
            while not self.stopping.wait(0.5):
                self._backends(conn)
            self._backends(conn)

    def _own(self) -> dict[str, float]:
        workers = _descendants([p.pid for p in self.celery.processes])
        return {
            "workers": sum(_proc_cpu(pid) for pid in workers),
            "receiver": _proc_cpu(self.receiver.process.pid),
            "driver": time.process_time(),
        }

    def start(self) -> None:
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        self.ready.wait(10)
        self.before = self._own()

    def stop(self) -> dict[str, float]:
        after = self._own()
        self.stopping.set()
        self.thread.join(10)
        used = {key: after[key] - self.before[key] for key in after}
        used["postgres"] = sum(self.backend_last[pid] - self.backend_first[pid] for pid in self.backend_last)
        return used


# --- Measuring ----------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def publish_at(rate: float, count: int, organization, event_type: str, data: dict) -> dict[int, float]:
    """Publish ``count`` events at ``rate``/s; returns event id → commit time (wall clock)."""
    from django.db import transaction

    from portal import events

    stamps: dict[int, float] = {}
    start = time.monotonic()
    for index in range(count):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        committed: list[float] = []
        with transaction.atomic():
            # Runs first among the on_commit hooks: right after COMMIT, before the dispatch is enqueued.
            transaction.on_commit(lambda committed=committed: committed.append(time.time()))
            event = events.publish(event_type, organization=organization, data=data)
        stamps[event.pk] = committed[0]
    return stamps


def wait_settled(timeout: float) -> bool:
    """Every event dispatched and no delivery pending."""
    from portal.models import Event
    from webhooks.models import Delivery, DeliveryState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            not Event.objects.filter(dispatched_at__isnull=True).exists()
            and not Delivery.objects.filter(state=DeliveryState.PENDING).exists()
        ):
            return True
        time.sleep(0.25)
    return False


def wait_for_workers(count: int, timeout: float = 180) -> None:
    from portal.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= count:
            return
    raise SystemExit(f"only {len(replies)} of {count} workers answered within {timeout:.0f} s")


def first_attempts(records, stamps: dict[int, float]) -> tuple[list[float], list[float]]:
    """Commit → first request, per delivery and per message (the first of its deliveries), in ms."""
    from webhooks.models import Message

    msg_to_event = dict(Message.objects.filter(event_id__in=list(stamps)).values_list("msg_id", "event_id"))
    first: dict[tuple[str, str], float] = {}
    for at, path, msg_id, _status in records:
        key = (path, msg_id)
        if msg_id in msg_to_event and (key not in first or at < first[key]):
            first[key] = at
    per_delivery = [(at - stamps[msg_to_event[msg]]) * 1000 for (_path, msg), at in first.items()]
    per_message: dict[str, float] = {}
    for (_path, msg), at in first.items():
        per_message[msg] = min(per_message.get(msg, at), at)
    return per_delivery, [(at - stamps[msg_to_event[msg]]) * 1000 for msg, at in per_message.items()]


def latency_split(records, stamps: dict[int, float]) -> tuple[list[float], list[float]]:
    """Commit → fan-out (the dispatch task ran the webhooks subscriber) and fan-out → first request, in ms."""
    from webhooks.models import Message

    rows = Message.objects.filter(event_id__in=list(stamps)).values_list("msg_id", "event_id", "created_at")
    fanned = {msg_id: (event_id, created.timestamp()) for msg_id, event_id, created in rows}
    first: dict[str, float] = {}
    for at, _path, msg_id, _status in records:
        if msg_id in fanned:
            first[msg_id] = min(first.get(msg_id, at), at)
    to_fan_out = [(fanned[m][1] - stamps[fanned[m][0]]) * 1000 for m in first]
    to_request = [(at - fanned[m][1]) * 1000 for m, at in first.items()]
    return to_fan_out, to_request


def describe(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.0f} ms, p95 {percentile(values, 95):.0f} ms, max {max(values):.0f} ms (n={len(values)})"


# --- Main ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help="create and migrate the bench database first")
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="pool size per worker process")
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--latency-rate", type=float, default=10)
    parser.add_argument("--rate", type=float, default=6, help="events/s in the throughput phase (x endpoints deliveries)")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--failure-events", type=int, default=60)
    parser.add_argument("--failure-rate", type=float, default=6)
    args = parser.parse_args()

    receiver = RemoteReceiver()  # forked before Django and its connections exist
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    os.environ.setdefault("DEBUG", "1")
    os.environ["LOG_LEVEL"] = "WARNING"
    if args.setup:
        setup_database()

    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count

    from portal.models import Membership, Organization
    from webhooks import services
    from webhooks.models import Attempt, Delivery, DeliveryState

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE webhooks_attempt, webhooks_delivery, webhooks_message, webhooks_endpoint, "
            "portal_eventdispatch, portal_event RESTART IDENTITY CASCADE"
        )
        pg_version = connection.cursor().connection.info.server_version
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    organization, _ = Organization.objects.get_or_create(slug="webhooks-bench", defaults={"name": "Webhooks bench"})
    user, _ = get_user_model().objects.get_or_create(username="webhooks-bench@bench.example")
    admin, _ = Membership.objects.get_or_create(organization=organization, user=user, defaults={"role": "admin"})
    for index in range(args.endpoints):
        services.endpoint_create(
            organization=organization,
            actor_membership=admin,
            url=receiver.url(f"/e/{index}"),
            event_types=["compliance.updated", *(["invoice.created"] if index == 0 else [])],
        )
    # Nobody to notify: the notifications subscriber still runs for every event, but sends nothing, so
    # the numbers are about webhooks.
    admin.delete()

    log_dir = Path(tempfile.mkdtemp(prefix="webhooks_bench_"))
    celery = Celery(log_dir, args.workers, args.concurrency, args.pool)
    report: list[str] = []
    try:
        wait_for_workers(args.workers)
        compliance = {"framework": "SOC 2", "status": "passing"}
        invoice = {
            "invoice": "INV-1",
            "amount": "10.00",
            "currency": "EUR",
            "period_start": "2026-01-01",
            "period_end": "2026-01-31",
        }
        # Warm-up: imports, connections, the workers' first tasks.
        publish_at(5, 10, organization, "compliance.updated", compliance)
        wait_settled(60)
        receiver.call("dump")

        # 0. What the workers and beat burn doing nothing (polling, the sweeper every 0.5 s).
        meter = CpuMeter(celery, receiver)
        meter.start()
        time.sleep(10)
        idle = meter.stop()
        report.append(
            "idle (10 s, no events): "
            + ", ".join(f"{key} {1000 * value / 10:.0f} ms/s" for key, value in idle.items())
        )

        # 1. Latency at a low rate, one delivery per event.
        meter = CpuMeter(celery, receiver)
        meter.start()
        stamps = publish_at(args.latency_rate, args.latency_events, organization, "invoice.created", invoice)
        settled = wait_settled(60)
        cpu = meter.stop()
        records = receiver.call("dump")
        per_delivery, _ = first_attempts(records, stamps)
        to_fan_out, to_request = latency_split(records, stamps)
        report.append(
            f"latency, {args.latency_events} events at {args.latency_rate:g}/s, 1 endpoint each: commit → first attempt "
            f"{describe(per_delivery)}{'' if settled else ' (NOT SETTLED)'}"
        )
        report.append(f"  of which commit → fan-out (dispatch task, subscribers before webhooks): {describe(to_fan_out)}")
        report.append(f"  and fan-out → request at the receiver (attempt task, claim, send): {describe(to_request)}")
        report.append(
            "  CPU per event (dispatch to every subscriber + one delivery, idle overhead included): "
            + ", ".join(f"{key} {1000 * value / args.latency_events:.1f} ms" for key, value in cpu.items())
        )

        # 2. Throughput: every event to every endpoint.
        count = int(args.rate * args.seconds)
        meter = CpuMeter(celery, receiver)
        meter.start()
        started = time.time()
        stamps = publish_at(args.rate, count, organization, "compliance.updated", compliance)
        published = time.time()
        settled = wait_settled(300)
        finished = time.time()
        cpu = meter.stop()
        records = receiver.call("dump")
        times = sorted(r[0] for r in records)
        in_window = sum(1 for t in times if t <= published)
        total = count * args.endpoints
        per_delivery, per_message = first_attempts(records, stamps)
        report.append(
            f"throughput, {count} events x {args.endpoints} endpoints = {total} deliveries, published at "
            f"{args.rate:g} events/s for {published - started:.1f} s: {in_window / (published - started):.0f} "
            f"deliveries/s while publishing (offered {args.rate * args.endpoints:.0f}/s); all {len(records)} "
            f"delivered {finished - started:.1f} s after the first event = {len(records) / (times[-1] - started):.0f}/s "
            f"end to end{'' if settled else ' (NOT SETTLED)'}"
        )
        report.append(f"  commit → first attempt, per delivery: {describe(per_delivery)}")
        report.append(f"  commit → first attempt, per message (first of its 100): {describe(per_message)}")
        per = {key: 1000 * value / max(1, len(records)) for key, value in cpu.items()}
        total_ms = sum(per.values())
        report.append(
            "  CPU per delivery: "
            + ", ".join(f"{key} {value:.2f} ms" for key, value in per.items())
            + f" = {total_ms:.2f} ms; on {os.cpu_count()} otherwise idle cores that is about "
            f"{1000 * (os.cpu_count() or 1) / total_ms:.0f} deliveries/s (receiver and driver included)"
        )

        # 3. 20 % failures: everything arrives eventually.
        receiver.call("fail", 0.2)
        before = set(Delivery.objects.values_list("pk", flat=True))
        stamps = publish_at(args.failure_rate, args.failure_events, organization, "compliance.updated", compliance)
        started = time.time()
        settled = wait_settled(300)
        records = receiver.call("dump")
        receiver.call("fail", 0.0)
        ok_counts: dict[tuple[str, str], int] = {}
        for _at, path, msg_id, status in records:
            if status == 200:
                ok_counts[(path, msg_id)] = ok_counts.get((path, msg_id), 0) + 1
        expected = args.failure_events * args.endpoints
        new = Delivery.objects.exclude(pk__in=before)
        states = dict(new.values_list("state").annotate(n=Count("pk")))
        failed_requests = sum(1 for r in records if r[3] != 200)
        report.append(
            f"20 % failures, {args.failure_events} events x {args.endpoints} endpoints = {expected} messages: "
            f"{len(records)} requests ({failed_requests} answered 503), {len(ok_counts)} distinct (endpoint, webhook-id) "
            f"delivered, {sum(n - 1 for n in ok_counts.values())} duplicates; delivery states {states}; settled in "
            f"{time.time() - started:.1f} s{'' if settled else ' (NOT SETTLED)'}"
        )
        lost = Attempt.objects.filter(outcome="lost").count()
        dead = Delivery.objects.filter(state=DeliveryState.DEAD).count()
        report.append(f"lost attempts (worker died): {lost}; dead deliveries overall: {dead}")
    finally:
        celery.stop()
        receiver.stop()

    load = os.getloadavg()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    print(f"\nlogs: {log_dir}\n## Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, PostgreSQL {pg_version}, "
        f"load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; workers: {args.workers} x {args.pool} "
        f"-c {args.concurrency} (+ beat), WEBHOOK_MAX_PARALLEL={getattr(settings, 'WEBHOOK_MAX_PARALLEL', 50)}, schedule "
        f"{settings.WEBHOOK_SCHEDULE}"
    )
    for line in report:
        print(f"- {line}")


if __name__ == "__main__":
    main()
