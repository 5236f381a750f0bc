#!/usr/bin/env python3
"""WebSocket load: N API-token clients on /ws/, connect time, commit -> frame latency, memory.

Run against the server ``make run`` starts (``scripts/run.py``: one Daphne per core on the same
port, a prefork Celery worker and beat), with the same ``DATABASE_URL`` / ``REDIS_URL`` /
``REDIS_DB`` in the environment as the server::

    export DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:PGPORT/portal_wsbench \\
           REDIS_URL=redis://127.0.0.1:REDISPORT/0 REDIS_DB=11
    PORT=8001 .venv/bin/python scripts/run.py &     # DAPHNE_PROCESSES=1 for a single Daphne
    .venv/bin/python bench/ws_bench.py --base-url http://127.0.0.1:8001 --clients 1000 --orgs 1 --duration 600

See bench/ws_RESULTS.md for the whole recipe (database, server processes) and the figures.

What it does
------------
1. Setup (Django ORM, this process): ``--orgs`` organizations ``wsbench-K``, ``--clients`` users
   ``wsbench-NNNNN`` (client i is a member of org i % orgs), one fresh API token per client
   (previous bench tokens are deleted), a staff "agent", and one ticket per round (requester =
   the round's target client). Then it waits until the worker has dispatched those events.
2. Clients: ``--client-procs`` spawned processes (no Django). ``--client-impl lean`` (default):
   plain non-blocking sockets on one epoll selector per process, the handshake and frames done
   by hand (bench/ws_lean.py: a fraction of the CPU, so the figures measure the server rather
   than the clients on the same cores); ``--client-impl websockets``: asyncio + ``websockets``
   (the client of every run in ws_RESULTS.md before the 05:59 section of 2026-11-26). Each client opens its own TCP socket
   (timed: TCP connect) and does the WebSocket handshake with ``Authorization: Token ...`` on it
   (timed: TCP start -> handshake complete, which on this server includes token auth, joining
   the groups and ``accept()``). Clients connect either in waves of ``--wave`` concurrent
   handshakes (split across client processes; a burst) or, with ``--connect-rate R``, at a
   steady R connections per second in all (the processes' slots interleaved; each connection
   timed from its own TCP start; the report gives the rate achieved and how late connections
   started against their slots). Clients only read: no client-side keepalive pings (like a
   browser); they answer Daphne's protocol pings and count the consumer's JSON
   ``{"type": "ping"}`` heartbeats.
3. Rounds (``--rounds``), four measurements each, one after the other:
   * ``pipeline_org``  ``events.publish("metrics.updated")`` in ``transaction.atomic()`` ->
     outbox -> Celery ``event_dispatch`` -> subscriber writes a Push -> ``push_send`` at its commit ->
     ``group_send(org)`` -> Daphne -> every socket of the org gets ``metrics_update``.
   * ``pipeline_user`` ``tickets.services.comment_create`` by the agent on the round's ticket ->
     same path -> the requester's socket gets ``notification`` (user-targeted). The same event
     also pushes ``ticket_update`` to the whole org; that fan-out is reported as
     ``pipeline_ticket_update``.
   * ``socket_org`` / ``socket_user``: ``notifications.services.push_create`` in a transaction,
     then ``push_send`` called right here after commit (the Celery enqueue that push_create
     registers is captured and not sent), so only Channels/Redis/Daphne are measured.
   The clock starts in the first ``on_commit`` callback of the transaction (registered before
   anything else), i.e. right after COMMIT returned. Frames carry a unique integer marker
   (``data.metrics.wsb_key`` or ``wsb:<key>`` in the notification title); a client timestamps a
   frame with ``time.monotonic()`` (CLOCK_MONOTONIC, shared by all processes) twice: when the
   read that brought its last byte returned ("arrival") and when the client has decoded it
   (websockets: ``recv()`` returned it; lean: its JSON parsed). Latency = receive - commit.
   Missing frames are counted after a final grace period; a frame reaching a client that should
   not get it (another org / user) is counted as "unexpected" (tenancy check).
4. Soak (``--duration`` seconds): all clients stay connected and read; every
   ``--soak-interval`` s one more ``pipeline_org`` event is published (0: fully idle). RSS/USS of
   the Daphne process(es) and of the Celery worker processes (psutil), and Redis ``INFO memory``,
   are sampled before the clients connect, when the soak starts, every minute, at its end and
   after the clients disconnected.

Server processes are found by the listening port of each ``--base-url`` (every Daphne process
listening on it: with several, memory samples also print each one's descriptors and CPU, i.e.
how the kernel spread the sockets) and by
environment (Celery processes whose DATABASE_URL and REDIS_DB equal this process's); override
with ``--daphne-pid`` / ``--worker-pid``. Percentiles are nearest-rank.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import re
import resource
import socket
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait as mp_wait
from pathlib import Path
from urllib.parse import urlsplit

from machine_probe import cpu_probe  # bench/machine_probe.py, beside this script

ROOT = Path(__file__).resolve().parent.parent

PING_FRAME = json.dumps({"type": "ping"})
KEY_RE = re.compile(r"wsb:(\d+)")
TOKEN_NAME = "ws-bench"  # noqa: S105 - a token *name*


def raise_nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# =============================================================================================
# Client side: spawned processes, asyncio + websockets, no Django.
# =============================================================================================


class ClientProcess:
    """Holds a share of the sockets; streams matched frames to the controller over a pipe."""

    def __init__(
        self, cmd_conn, data_conn, specs: list[tuple], wave: int, open_timeout: float, proc: int = 0, nprocs: int = 1
    ) -> None:
        self.proc, self.nprocs = proc, nprocs
        self.cmd_conn = cmd_conn
        self.data_conn = data_conn
        self.specs = specs  # (idx, host, port, path, token)
        self.wave = max(1, wave)
        self.open_timeout = open_timeout
        self.sockets: dict[int, object] = {}
        self.readers: dict[int, asyncio.Task] = {}
        self.pings: Counter[int] = Counter()
        self.other: Counter[str] = Counter()
        self.frames = 0
        self.bytes = 0
        self.closing = False
        self.extensions: Counter[str] = Counter()
        self.out_q: queue.SimpleQueue = queue.SimpleQueue()
        self.pending: list[tuple] = []
        self.connection_class = timed_connection_class()

    # -- plumbing -------------------------------------------------------------------------

    def out(self, item: tuple) -> None:
        # Collected per event-loop pass and handed to the sender thread once: a queue put per
        # frame woke that thread (and moved the GIL) once per frame, which at 1,000 sockets cost
        # the clients as much CPU as parsing the frames and delayed the readers' timestamps.
        self.pending.append(item)
        if len(self.pending) == 1:
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self.out_q.put(batch)

    def _sender(self) -> None:
        """Pipe writes happen here so a slow controller never blocks the event loop."""
        while True:
            items = self.out_q.get()
            if items is None:
                return
            batch = list(items)
            with contextlib.suppress(queue.Empty):
                while len(batch) < 5000:
                    nxt = self.out_q.get_nowait()
                    if nxt is None:
                        self.data_conn.send(("batch", batch))
                        return
                    batch.extend(nxt)
            self.data_conn.send(("batch", batch))

    def _on_command(self) -> None:
        try:
            cmd = self.cmd_conn.recv()
        except (EOFError, OSError):
            self.loop.remove_reader(self.cmd_conn.fileno())
            cmd = ("close",)
        self.commands.put_nowait(cmd)

    async def main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.commands: asyncio.Queue = asyncio.Queue()
        self.loop.add_reader(self.cmd_conn.fileno(), self._on_command)
        sender = threading.Thread(target=self._sender, daemon=True)
        sender.start()
        while True:
            cmd = await self.commands.get()
            if cmd[0] == "connect":
                await self.connect_all(cmd[1] if len(cmd) > 1 else {})
            elif cmd[0] == "stats":
                self.out(("stats", self.stats()))
            elif cmd[0] == "close":
                await self.close_all()
                self.out(("stats", self.stats()))
                self.out(("bye",))
                break
        self._flush()
        self.out_q.put(None)
        sender.join(10)

    def stats(self) -> dict:
        return {
            "pings": {idx: self.pings.get(idx, 0) for idx in self.sockets},
            "open": sum(1 for ws in self.sockets.values() if ws.state.name == "OPEN"),
            "frames": self.frames,
            "bytes": self.bytes,
            "other": dict(self.other),
            "extensions": dict(self.extensions),
            "cpu_s": time.process_time(),
            "cpu_sys_s": os.times().system,
        }

    # -- connecting -----------------------------------------------------------------------

    async def connect_all(self, plan: dict) -> None:
        results = []
        if plan.get("rate"):
            # Paced: this process's j-th connection opens at start_at + (j * nprocs + proc) / rate,
            # i.e. all processes together open `rate` per second, evenly spaced.
            t0 = plan["start_at"]
            tasks = []
            for j, spec in enumerate(self.specs):
                when = t0 + (j * self.nprocs + self.proc) / plan["rate"]
                delay = when - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self.connect_one(spec, when)))
            results = list(await asyncio.gather(*tasks))
        else:
            t0 = time.monotonic()
            for start in range(0, len(self.specs), self.wave):
                batch = self.specs[start : start + self.wave]
                results += await asyncio.gather(*(self.connect_one(spec) for spec in batch))
        self.out(("connected", results, time.monotonic() - t0))

    async def connect_one(self, spec: tuple, scheduled: float | None = None) -> tuple:
        from websockets.asyncio.client import connect

        idx, host, port, path, token = spec
        t_start = time.monotonic()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(self.loop.sock_connect(sock, (host, port)), self.open_timeout)
            t_tcp = time.monotonic()
            ws = await connect(
                f"ws://{host}:{port}{path}",
                sock=sock,
                additional_headers={"Authorization": f"Token {token}"},
                ping_interval=None,  # clients just read, like a browser tab
                ping_timeout=None,
                proxy=None,
                open_timeout=self.open_timeout,
                max_size=2**22,
                create_connection=self.connection_class,
            )
            t_open = time.monotonic()
        except Exception as exc:
            sock.close()
            return (idx, None, None, f"{type(exc).__name__}: {exc}"[:200], t_start, scheduled)
        self.extensions[",".join(type(e).__name__ for e in ws.protocol.extensions) or "none"] += 1
        self.sockets[idx] = ws
        self.readers[idx] = asyncio.create_task(self.reader(idx, ws))
        return (idx, (t_tcp - t_start) * 1e3, (t_open - t_start) * 1e3, None, t_start, scheduled)

    # -- reading --------------------------------------------------------------------------

    async def reader(self, idx: int, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                raw = await ws.recv()
                t = time.monotonic()
                arrived = ws.arrivals.popleft() if ws.arrivals else t
                self.frames += 1
                self.bytes += len(raw)
                if raw == PING_FRAME:
                    self.pings[idx] += 1
                    continue
                try:
                    message = json.loads(raw)
                except ValueError:
                    self.other["not-json"] += 1
                    continue
                kind = message.get("type")
                data = message.get("data") or {}
                if kind == "metrics_update":
                    key = (data.get("metrics") or {}).get("wsb_key")
                    if key is not None:
                        self.out(("k", int(key), idx, t, message.get("id"), arrived))
                        continue
                elif kind == "notification":
                    found = KEY_RE.search((data.get("notification") or {}).get("title", ""))
                    if found:
                        self.out(("k", int(found.group(1)), idx, t, message.get("id"), arrived))
                        continue
                elif kind == "ticket_update":
                    self.out(("t", data.get("ticket"), data.get("comment_count"), idx, t, message.get("id"), arrived))
                    continue
                self.other[str(kind)] += 1
        except ConnectionClosed as exc:
            if not self.closing:
                rcvd = exc.rcvd
                self.out(("closed", idx, rcvd.code if rcvd else None, rcvd.reason if rcvd else "", time.monotonic()))
        except asyncio.CancelledError:
            pass

    async def close_all(self) -> None:
        self.closing = True
        items = list(self.sockets.values())
        for start in range(0, len(items), 100):
            await asyncio.gather(*(ws.close() for ws in items[start : start + 100]), return_exceptions=True)
        for task in self.readers.values():
            task.cancel()


def timed_connection_class():
    """websockets' client connection, noting when each message's last frame came off the socket.

    ``recv()`` returns a message only after the event loop has also woken the reader task, and
    the reader then decodes the JSON and hands the result on: with 500 sockets per client process
    receiving the same org-wide frame at once, the last reader's timestamp carried the decoding of
    the 499 before it. ``data_received`` runs when the loop reads each socket, before any of that,
    so the bench reports both: ``arrival`` (read off the socket) and the reader's own time.
    """
    from websockets.asyncio.client import ClientConnection
    from websockets.frames import Opcode

    data = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)

    class TimedClientConnection(ClientConnection):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.arrivals: deque[float] = deque()
            self.read_at = 0.0

        def data_received(self, chunk: bytes) -> None:
            self.read_at = time.monotonic()
            super().data_received(chunk)

        def process_event(self, event) -> None:
            if getattr(event, "opcode", None) in data and event.fin:  # frames, not the handshake's response
                self.arrivals.append(self.read_at)
            super().process_event(event)

    return TimedClientConnection


def client_entry(cmd_conn, data_conn, specs, wave, open_timeout, proc=0, nprocs=1) -> None:
    raise_nofile()
    import websockets.asyncio.client
    import websockets.exceptions  # noqa: F401

    asyncio.run(ClientProcess(cmd_conn, data_conn, specs, wave, open_timeout, proc, nprocs).main())


# =============================================================================================
# Controller: Django setup, data, publishing, tallying, memory.
# =============================================================================================


@dataclass
class Round:
    kind: str
    key: int
    expected: set[int]
    t0: float = 0.0  # monotonic, at commit
    t0_wall: float = 0.0
    send_returned: float | None = None  # socket leg: push_send() returned (monotonic)
    group_send_started: float | None = None  # socket leg: inside push_send, around group_send()
    group_send_returned: float | None = None
    ticket: str | None = None  # pipeline_user: public id of the ticket (for ticket_update)
    ticket_expected: set[int] = field(default_factory=set)


@dataclass
class Client:
    idx: int
    user_id: int
    org_index: int
    token: str
    url: tuple  # host, port, path


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DEBUG", "1")
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not os.environ.get(name):
            sys.exit(f"ws_bench: {name} must be set (the same as the server's), see bench/ws_RESULTS.md")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.urls = []
        for base in args.base_url:
            parts = urlsplit(base)
            self.urls.append((parts.hostname or "127.0.0.1", parts.port or 80, "/ws/"))
        self.received: dict[int, dict[int, float]] = defaultdict(dict)
        self.received_push_ids: dict[int, set] = defaultdict(set)
        self.ticket_received: dict[tuple, dict[int, float]] = defaultdict(dict)
        # The same frames, timed when the client read them off the socket (timed_connection_class).
        self.arrived: dict[int, dict[int, float]] = defaultdict(dict)
        self.ticket_arrived: dict[tuple, dict[int, float]] = defaultdict(dict)
        self.duplicates = 0
        self.closed: list[tuple] = []
        self.connect_results: list[tuple] = []
        self.ramp_per_proc: list[float] = []
        self.stats_replies: list[dict] = []
        self.byes = 0
        self.rounds: list[Round] = []
        self.key_counter = (int(time.time()) % 100_000) * 10_000
        self.samples: list[dict] = []
        self.probes: list[dict] = []
        self.kind_of = {
            "publish_pipeline_org": "pipeline_org",
            "publish_pipeline_user": "pipeline_user",
            "socket_org": "socket_org",
            "socket_user": "socket_user",
        }

    # -- helpers --------------------------------------------------------------------------

    def next_key(self) -> int:
        self.key_counter += 1
        return self.key_counter

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # -- data -----------------------------------------------------------------------------

    def setup_data(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.hashers import make_password
        from django.db import transaction
        from django.utils import timezone

        from portal import services as portal_services
        from portal.models import ApiToken, Membership, Organization
        from tickets import services as ticket_services

        args = self.args
        User = get_user_model()
        started = time.monotonic()
        self.setup_started = timezone.now()
        self.orgs = []
        for k in range(args.orgs):
            org, _ = Organization.objects.get_or_create(slug=f"wsbench-{k}", defaults={"name": f"WS bench {k}"})
            self.orgs.append(org)
        names = [f"wsbench-{i:05d}" for i in range(args.clients)]
        existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
        unusable = make_password(None)
        User.objects.bulk_create(
            [User(username=n, email=f"{n}@wsbench.invalid", password=unusable) for n in names if n not in existing],
            batch_size=1000,
        )
        user_ids = dict(User.objects.filter(username__in=names).values_list("username", "id"))
        org_of = [i % args.orgs for i in range(args.clients)]
        have = set(
            Membership.objects.filter(organization__in=self.orgs, user_id__in=user_ids.values()).values_list(
                "organization_id", "user_id"
            )
        )
        Membership.objects.bulk_create(
            [
                Membership(organization=self.orgs[org_of[i]], user_id=user_ids[n], role=Membership.Role.MEMBER)
                for i, n in enumerate(names)
                if (self.orgs[org_of[i]].pk, user_ids[n]) not in have
            ],
            batch_size=1000,
        )
        memberships = {
            (m.organization_id, m.user_id): m
            for m in Membership.objects.filter(
                organization__in=self.orgs, user_id__in=user_ids.values()
            ).select_related("organization", "user")
        }
        ApiToken.objects.filter(name=TOKEN_NAME, membership__user__username__startswith="wsbench-").delete()
        self.clients: list[Client] = []
        with transaction.atomic():
            for i, n in enumerate(names):
                membership = memberships[(self.orgs[org_of[i]].pk, user_ids[n])]
                _, key = portal_services.api_token_create(membership=membership, name=TOKEN_NAME)
                self.clients.append(Client(i, user_ids[n], org_of[i], key, self.urls[i % len(self.urls)]))
        if args.warm_tokens:
            # Tokens "used a moment ago": the handshake then skips the last_used_at UPDATE.
            ApiToken.objects.filter(name=TOKEN_NAME, membership__user__username__startswith="wsbench-").update(
                last_used_at=timezone.now()
            )
        self.by_org: list[set[int]] = [set() for _ in self.orgs]
        for c in self.clients:
            self.by_org[c.org_index].add(c.idx)
        self.agent, _ = User.objects.get_or_create(
            username="wsbench-agent",
            defaults={"is_staff": True, "email": "agent@wsbench.invalid", "password": unusable},
        )
        # One ticket per round, requested by the round's target client: the agent's reply then
        # notifies exactly that user.
        self.tickets = []
        for r in range(args.rounds):
            client = self.clients[(r * 7919) % len(self.clients)]
            key = self.next_key()
            with transaction.atomic():
                ticket = ticket_services.ticket_create(
                    organization=self.orgs[client.org_index],
                    requester=User.objects.get(pk=client.user_id),
                    subject=f"wsbench wsb:{key}",
                    description="WebSocket benchmark ticket.",
                )
            self.tickets.append((key, client, ticket))
        self.log(
            f"setup: {len(self.orgs)} org(s), {len(self.clients)} users/tokens, {len(self.tickets)} tickets "
            f"in {time.monotonic() - started:.1f}s (warm tokens: {bool(args.warm_tokens)})"
        )
        self.wait_drained(timeout=180)

    def wait_drained(self, timeout: float) -> None:
        """Wait until the worker has dispatched every event and sent every push of our orgs."""
        from notifications.models import Push
        from portal.models import Event

        deadline = time.monotonic() + timeout
        # Only this run's rows: an earlier, interrupted run may have left unsent pushes (no beat here).
        since = self.setup_started
        while time.monotonic() < deadline:
            events = Event.objects.filter(
                organization__in=self.orgs, dispatched_at__isnull=True, created_at__gte=since
            ).count()
            pushes = Push.objects.filter(
                organization__in=self.orgs, sent_at__isnull=True, created_at__gte=since
            ).count()
            if events == 0 and pushes == 0:
                return
            self.pump(0.5)
        self.log(f"WARNING: not drained after {timeout}s: {events} events undispatched, {pushes} pushes unsent")

    # -- processes ------------------------------------------------------------------------

    def find_processes(self) -> None:
        import psutil
        from django.conf import settings

        self.daphne_pids = list(self.args.daphne_pid or [])
        if not self.daphne_pids:
            ports = {port for _, port, _ in self.urls}
            for conn in psutil.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports and conn.pid:
                    self.daphne_pids.append(conn.pid)
        self.worker_pids = list(self.args.worker_pid or [])
        if not self.worker_pids:
            want_db, want_redis_db = os.environ["DATABASE_URL"], str(settings.REDIS_DB)
            for proc in psutil.process_iter(["cmdline"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                if "celery" not in cmd or " worker" not in cmd:
                    continue
                with contextlib.suppress(psutil.Error):
                    env = proc.environ()
                    if env.get("DATABASE_URL") == want_db and env.get("REDIS_DB", "0") == want_redis_db:
                        self.worker_pids.append(proc.pid)
        self.log(f"server processes: daphne {self.daphne_pids}, celery worker {sorted(self.worker_pids)}")
        if not self.daphne_pids:
            sys.exit("ws_bench: no Daphne listening on the --base-url port(s)")

    def memory(self, label: str) -> dict:
        import psutil
        import redis
        from django.conf import settings

        def procs(pids: list[int]) -> dict:
            rss = uss = fds = threads = 0
            cpu = 0.0
            alive = 0
            each = []  # per process: with several Daphne processes, how the sockets and CPU spread
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(pid)
                    info = proc.memory_full_info()
                    rss += info.rss
                    uss += info.uss
                    n_fds = proc.num_fds()
                    fds += n_fds
                    threads += proc.num_threads()
                    times = proc.cpu_times()
                    cpu += times.user + times.system
                    alive += 1
                    each.append({"pid": pid, "fds": n_fds, "cpu_s": times.user + times.system})
            return {
                "rss_mb": rss / 2**20,
                "uss_mb": uss / 2**20,
                "fds": fds,
                "threads": threads,
                "cpu_s": cpu,
                "alive": alive,
                "per_process": each,
            }

        client = redis.Redis.from_url(settings.REDIS_URL)
        info = client.info("memory")
        info_stats = client.info("stats")
        own = 0
        keys = 0
        for key in client.scan_iter(count=1000):
            keys += 1
            own += client.memory_usage(key) or 0
        groups = {f"org-{org.pk}": client.zcard(f"portal-ws:group:org-{org.pk}") for org in getattr(self, "orgs", [])}
        sample = {
            "label": label,
            "t": time.time(),
            "load": os.getloadavg(),
            "daphne": procs(self.daphne_pids),
            "worker": procs(self.worker_pids),
            "redis": {
                "used_memory_mb": info["used_memory"] / 2**20,
                "used_memory_rss_mb": info["used_memory_rss"] / 2**20,
                "db_keys": keys,
                "db_bytes_mb": own / 2**20,
                "group_members": groups,
                "total_connections_received": info_stats["total_connections_received"],
            },
        }
        client.close()
        self.samples.append(sample)
        d, w, r = sample["daphne"], sample["worker"], sample["redis"]
        self.log(
            f"memory [{label}]: daphne RSS {d['rss_mb']:.1f} MB (USS {d['uss_mb']:.1f}, fds {d['fds']}, "
            f"cpu {d['cpu_s']:.1f}s) | worker x{w['alive']} RSS {w['rss_mb']:.1f} MB (USS {w['uss_mb']:.1f}) | "
            f"redis used {r['used_memory_mb']:.2f} MB, db keys {r['db_keys']} ({r['db_bytes_mb']:.2f} MB) "
            f"groups {r['group_members']} | load {sample['load'][0]:.2f}"
            + (
                " | per daphne (fds, cpu s): " + ", ".join(f"{e['fds']}/{e['cpu_s']:.1f}" for e in d["per_process"])
                if len(d["per_process"]) > 1
                else ""
            )
        )
        return sample

    def probe(self, label: str) -> dict:
        """Context for the figures: a small durable commit and a Redis round trip, right now."""
        import redis
        from django.conf import settings
        from django.db import connection

        commits, selects, pings = [], [], []
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS wsbench_probe (id int PRIMARY KEY, at timestamptz)")
            cursor.execute("INSERT INTO wsbench_probe VALUES (1, now()) ON CONFLICT (id) DO NOTHING")
            for _ in range(20):
                t = time.perf_counter()
                cursor.execute("UPDATE wsbench_probe SET at = now() WHERE id = 1")  # autocommit: one fsync
                commits.append((time.perf_counter() - t) * 1e3)
                t = time.perf_counter()
                cursor.execute("SELECT 1")
                selects.append((time.perf_counter() - t) * 1e3)
        client = redis.Redis.from_url(settings.REDIS_URL)
        for _ in range(20):
            t = time.perf_counter()
            client.ping()
            pings.append((time.perf_counter() - t) * 1e3)
        client.close()
        out = {
            "label": label,
            "load": os.getloadavg(),
            "cpu_probe_ms": cpu_probe(),
            "pg_commit_ms": self.dist(commits),
            "pg_select_ms": self.dist(selects),
            "redis_ping_ms": self.dist(pings),
        }
        self.probes.append(out)
        self.log(
            f"probe [{label}]: PostgreSQL 1-row UPDATE+COMMIT p50 {fmt(out['pg_commit_ms']['p50'], 2)} ms "
            f"p95 {fmt(out['pg_commit_ms']['p95'], 2)}; SELECT 1 p50 {fmt(out['pg_select_ms']['p50'], 2)} ms; "
            f"Redis PING p50 {fmt(out['redis_ping_ms']['p50'], 2)} ms; CPU probe {out['cpu_probe_ms']:.1f} ms; "
            f"load {out['load'][0]:.2f}"
        )
        return out

    def start_clients(self) -> None:
        ctx = mp.get_context("spawn")
        n = max(1, min(self.args.client_procs, len(self.clients)))
        self.cmd_conns, self.data_conns, self.procs = [], [], []
        wave = max(1, math.ceil(self.args.wave / n))
        if self.args.client_impl == "lean":
            sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ws_lean.py, also in the children
            from ws_lean import lean_client_entry as entry
        else:
            entry = client_entry
        for p in range(n):
            specs = [(c.idx, *c.url, c.token) for c in self.clients[p::n]]
            cmd_r, cmd_w = ctx.Pipe(duplex=False)
            data_r, data_w = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=entry, args=(cmd_r, data_w, specs, wave, self.args.open_timeout, p, n), daemon=True
            )
            proc.start()
            self.cmd_conns.append(cmd_w)
            self.data_conns.append(data_r)
            self.procs.append(proc)

    def broadcast(self, cmd: tuple) -> None:
        for conn in self.cmd_conns:
            conn.send(cmd)

    def pump(self, timeout: float) -> None:
        for conn in mp_wait(self.data_conns, timeout) if getattr(self, "data_conns", None) else []:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                self.data_conns.remove(conn)
                continue
            for item in message[1]:
                self.handle(item)

    def handle(self, item: tuple) -> None:
        tag = item[0]
        if tag == "k":
            _, key, idx, t, push_id, arrived = item
            got = self.received[key]
            if idx in got:
                self.duplicates += 1
            else:
                got[idx] = t
                self.arrived[key][idx] = arrived
            self.received_push_ids[key].add(push_id)
        elif tag == "t":
            _, ticket, count, idx, t, _push_id, arrived = item
            got = self.ticket_received[(ticket, count)]
            if idx in got:
                self.duplicates += 1
            else:
                got[idx] = t
                self.ticket_arrived[(ticket, count)][idx] = arrived
        elif tag == "connected":
            self.connect_results += item[1]
            self.ramp_per_proc.append(item[2])
        elif tag == "stats":
            self.stats_replies.append(item[1])
        elif tag == "closed":
            self.closed.append(item[1:])
        elif tag == "bye":
            self.byes += 1

    def collect_stats(self, timeout: float = 30) -> dict:
        self.stats_replies = []
        self.broadcast(("stats",))
        deadline = time.monotonic() + timeout
        while len(self.stats_replies) < len(self.procs) and time.monotonic() < deadline:
            self.pump(0.1)
        merged = {
            "pings": {},
            "open": 0,
            "frames": 0,
            "bytes": 0,
            "other": Counter(),
            "extensions": Counter(),
            "cpu_s": 0.0,
            "protocol_pings": 0,  # lean client only (websockets answers them without counting)
            "cpu_sys_s": 0.0,  # of cpu_s: in the kernel (socket reads and writes, epoll)
        }
        for s in self.stats_replies:
            merged["pings"].update(s["pings"])
            merged["open"] += s["open"]
            merged["frames"] += s["frames"]
            merged["bytes"] += s["bytes"]
            merged["other"].update(s["other"])
            merged["extensions"].update(s["extensions"])
            merged["cpu_s"] += s["cpu_s"]
            merged["protocol_pings"] += s.get("protocol_pings", 0)
            merged["cpu_sys_s"] += s.get("cpu_sys_s", 0.0)
        return merged

    # -- connecting -----------------------------------------------------------------------

    def connect_mode(self) -> str:
        a = self.args
        if a.connect_rate:
            return f"paced {a.connect_rate:g}/s"
        return f"waves of {a.wave}"

    def connect(self) -> None:
        t0 = time.monotonic()
        rate = self.args.connect_rate
        plan = {"rate": rate, "start_at": t0 + 0.5} if rate else {}
        self.broadcast(("connect", plan))
        deadline = t0 + max(120, self.args.clients * 0.5) + (self.args.clients / rate if rate else 0)
        while len(self.ramp_per_proc) < len(self.procs) and time.monotonic() < deadline:
            self.pump(0.2)
        self.ramp_s = time.monotonic() - plan.get("start_at", t0)  # paced: from the first slot
        ok = [r for r in self.connect_results if r[3] is None]
        errors = Counter(r[3].split(":")[0] for r in self.connect_results if r[3] is not None)
        self.connected = {r[0] for r in ok}
        starts = sorted(r[4] for r in self.connect_results)
        lags = [(r[4] - r[5]) * 1e3 for r in self.connect_results if len(r) > 5 and r[5] is not None]
        self.connect_summary = {
            "mode": self.connect_mode(),
            "client_impl": self.args.client_impl,
            # Paced mode: the arrival rate achieved (first to last TCP start) and how late each
            # connection started against its slot (a busy client process starts late).
            "offered_rate": (
                (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 and starts[-1] > starts[0] else None
            ),
            "start_lag_ms": self.dist(lags) if lags else None,
            "clients": len(self.clients),
            "connected": len(ok),
            "errors": dict(errors),
            "error_examples": [r[3] for r in self.connect_results if r[3] is not None][:3],
            "ramp_s": self.ramp_s,
            "tcp_ms": self.dist([r[1] for r in ok]),
            "open_ms": self.dist([r[2] for r in ok]),
            # Each connection (JSON only): TCP start (s after the first), TCP ms, handshake ms.
            "first_start_monotonic": starts[0] if starts else None,
            "per_connection": sorted([round(r[4] - starts[0], 4), round(r[1], 2), round(r[2], 2)] for r in ok),
        }
        s = self.connect_summary
        self.log(
            f"connect: {s['connected']}/{s['clients']} open in {s['ramp_s']:.2f}s ({s['mode']}, {s['client_impl']} client"
            + (
                f", achieved {fmt(s['offered_rate'])}/s, start lag p95 {fmt(s['start_lag_ms']['p95'], 2)} ms"
                if s["start_lag_ms"]
                else ""
            )
            + "); "
            f"handshake ms p50 {fmt(s['open_ms']['p50'])} p95 {fmt(s['open_ms']['p95'])} "
            f"p99 {fmt(s['open_ms']['p99'])} max {fmt(s['open_ms']['max'])}; TCP ms p95 {fmt(s['tcp_ms']['p95'], 2)}"
            + (f"; errors {dict(errors)}" if errors else "")
        )

    @staticmethod
    def dist(values: list[float]) -> dict:
        return {
            "n": len(values),
            "p50": pct(values, 50),
            "p95": pct(values, 95),
            "p99": pct(values, 99),
            "max": max(values) if values else None,
            "mean": sum(values) / len(values) if values else None,
        }

    # -- publishing -----------------------------------------------------------------------

    def _committed(self, rnd: Round, work) -> None:
        from django.db import transaction

        def stamp() -> None:
            rnd.t0 = time.monotonic()
            rnd.t0_wall = time.time()

        with transaction.atomic():
            transaction.on_commit(stamp)  # first callback: runs right after COMMIT
            result = work()
        return result

    def publish_pipeline_org(self, org_index: int) -> Round:
        from django.utils import timezone

        from portal import events

        rnd = Round("pipeline_org", self.next_key(), set(self.by_org[org_index]) & self.connected)
        org = self.orgs[org_index]
        data = {
            "metrics": {"wsb_key": rnd.key, "cpu_percent": 42.5},
            "resource": "wsbench",
            "observed_at": timezone.now().isoformat(),
        }
        self._committed(
            rnd, lambda: events.publish(events.METRICS_UPDATED, organization=org, data=data, source="wsbench")
        )
        return rnd

    def publish_pipeline_user(self, r: int) -> Round:
        from tickets import services as ticket_services

        key, client, ticket = self.tickets[r % len(self.tickets)]
        rnd = Round("pipeline_user", key, {client.idx} & self.connected, ticket=str(ticket.public_id))
        rnd.ticket_expected = set(self.by_org[client.org_index]) & self.connected
        self._committed(
            rnd, lambda: ticket_services.comment_create(ticket=ticket, author=self.agent, body=f"Reply wsb:{key}")
        )
        return rnd

    def publish_socket(self, kind: str, org_index: int, client: Client | None) -> Round:
        from notifications import services as notification_services
        from portal import realtime

        captured: list[int] = []
        original = notification_services._enqueue_send
        # No Celery: send right here instead. (_enqueue_send takes one id or, since f10301b, a list.)
        notification_services._enqueue_send = lambda ids: captured.extend(ids if isinstance(ids, list) else [ids])
        try:
            key = self.next_key()
            org = self.orgs[org_index]
            if client is None:
                rnd = Round(kind, key, set(self.by_org[org_index]) & self.connected)
                work = lambda: notification_services.push_create(  # noqa: E731
                    organization=org, type="metrics_update", data={"metrics": {"wsb_key": key, "cpu_percent": 42.5}}
                )
            else:
                rnd = Round(kind, key, {client.idx} & self.connected)
                work = lambda: notification_services.push_create(  # noqa: E731
                    organization=org,
                    user_id=client.user_id,
                    type="notification",
                    data={
                        "unread": 1,
                        "notification": {"id": "wsbench", "kind": "info", "title": f"wsb:{key}", "new": True},
                    },
                )
            self._committed(rnd, work)
        finally:
            notification_services._enqueue_send = original
        original_group_send = realtime.group_send

        def timed_group_send(group: str, message: dict) -> None:
            rnd.group_send_started = time.monotonic()
            original_group_send(group, message)
            rnd.group_send_returned = time.monotonic()

        realtime.group_send = timed_group_send  # this process only: times the Redis leg
        try:
            if "push_ids" in inspect.signature(notification_services.push_send).parameters:
                notification_services.push_send(push_ids=captured)
            else:
                for push_id in captured:
                    notification_services.push_send(push_id=push_id)
        finally:
            realtime.group_send = original_group_send
        rnd.send_returned = time.monotonic()
        return rnd

    def wait_round(self, rnd: Round, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = rnd.expected <= self.received[rnd.key].keys()
            if rnd.ticket:
                done = done and rnd.ticket_expected <= self.ticket_received[(rnd.ticket, 1)].keys()
            if done:
                return
            self.pump(min(0.05, max(0.0, deadline - time.monotonic())))

    def run_rounds(self) -> None:
        args = self.args
        started = time.monotonic()
        stats_before = self.collect_stats()
        clients_cpu_before = stats_before["cpu_s"]
        cpu_before = self.memory("before rounds")
        profiler = self.start_profiler("rounds")
        for r in range(args.rounds):
            org_index = r % len(self.orgs)
            target = self.clients[(r * 7919 + 1) % len(self.clients)]
            plan = [
                (self.publish_pipeline_org, (org_index,)),
                (self.publish_pipeline_user, (r,)),
                (self.publish_socket, ("socket_org", org_index, None)),
                (self.publish_socket, ("socket_user", target.org_index, target)),
            ]
            for make, make_args in plan:
                if self.kind_of[make_args[0] if make == self.publish_socket else make.__name__] not in args.kinds:
                    continue
                rnd = make(*make_args)
                self.rounds.append(rnd)
                self.wait_round(rnd, args.round_timeout)
                time.sleep(args.gap)
                self.pump(0)
            if (r + 1) % 10 == 0:
                self.log(f"rounds: {r + 1}/{args.rounds} done")
        # Grace period for stragglers, then everything still missing is missing.
        end = time.monotonic() + 3
        while time.monotonic() < end:
            self.pump(0.1)
        self.stop_profiler(profiler)
        stats_after = self.collect_stats()
        clients_cpu_after = stats_after["cpu_s"]
        cpu_after = self.memory("after rounds")
        self.rounds_s = time.monotonic() - started
        self.rounds_cpu = {
            "daphne_cpu_s": cpu_after["daphne"]["cpu_s"] - cpu_before["daphne"]["cpu_s"],
            "worker_cpu_s": cpu_after["worker"]["cpu_s"] - cpu_before["worker"]["cpu_s"],
            "bench_clients_cpu_s": clients_cpu_after - clients_cpu_before,
            "bench_clients_sys_s": stats_after["cpu_sys_s"] - stats_before["cpu_sys_s"],
            # Every message the clients read in the rounds (heartbeats included), and the kinds
            # they did not expect: the same counts from both client implementations.
            "client_frames": stats_after["frames"] - stats_before["frames"],
            "client_other": dict(stats_after["other"] - stats_before["other"]),
        }

    def start_profiler(self, phase: str):
        """Optional: sample the (first) Daphne process with py-spy during a phase (--py-spy)."""
        import subprocess

        if not self.args.py_spy:
            return None
        out = Path(self.args.py_spy_dir) / f"daphne-{phase}-{len(self.clients)}c-{int(time.time())}.raw"
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [self.args.py_spy, "record", "-p", str(self.daphne_pids[0]), "-r", "100", "-f", "raw", "--threads"]
        cmd += ["--nonblocking", "-o", str(out)]
        self.log(f"py-spy: sampling Daphne during {phase} -> {out}")
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603

    def stop_profiler(self, proc) -> None:
        import signal

        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(Exception):
            proc.wait(30)

    def soak(self) -> None:
        args = self.args
        if args.duration <= 0:
            return
        self.log(
            f"soak: {args.duration}s with {len(self.connected)} sockets; one pipeline_org event every "
            f"{args.soak_interval}s"
            if args.soak_interval
            else f"soak: {args.duration}s idle"
        )
        stats_before = self.collect_stats()
        self.memory("soak start")
        start = time.monotonic()
        next_publish = start + (args.soak_interval or args.duration + 1)
        next_sample = start + 60
        end = start + args.duration
        r = 0
        while time.monotonic() < end:
            now = time.monotonic()
            if args.soak_interval and now >= next_publish:
                rnd = self.publish_pipeline_org(r % len(self.orgs))
                rnd.kind = "soak_pipeline_org"
                self.rounds.append(rnd)
                r += 1
                next_publish += args.soak_interval
            if now >= next_sample and now < end - 5:
                self.memory(f"soak +{int(now - start)}s")
                next_sample += 60
            self.pump(0.2)
        stats_after = self.collect_stats()
        self.memory("soak end")
        pings = [stats_after["pings"].get(i, 0) - stats_before["pings"].get(i, 0) for i in self.connected]
        self.soak_summary = {
            "duration_s": args.duration,
            "open_at_end": stats_after["open"],
            "heartbeats_per_client": {
                "min": min(pings) if pings else None,
                "max": max(pings) if pings else None,
                "expected": args.duration / 25,
            },
            "unexpected_closes": len(self.closed),
        }
        self.log(
            f"soak: open at end {stats_after['open']}, heartbeat pings per client min {min(pings)} "
            f"max {max(pings)} (~{args.duration / 25:.0f} expected), unexpected closes {len(self.closed)}, "
            f"protocol pings answered {stats_after['protocol_pings'] - stats_before['protocol_pings']}"
        )

    # -- results --------------------------------------------------------------------------

    def pipeline_breakdown(self) -> dict:
        """Where the time goes in the real pipeline: DB timestamps written by the worker."""
        from notifications.models import Push
        from portal.models import Event, EventDispatch

        out = {}
        start_wall = min((r.t0_wall for r in self.rounds), default=time.time()) - 5
        from datetime import UTC, datetime

        since = datetime.fromtimestamp(start_wall, tz=UTC)
        pushes = list(
            Push.objects.filter(organization__in=self.orgs, created_at__gte=since).values(
                "id", "type", "data", "created_at", "sent_at"
            )
        )
        events = list(
            Event.objects.filter(organization__in=self.orgs, created_at__gte=since).values(
                "id", "type", "payload", "dispatched_at"
            )
        )
        handled: dict[int, dict[str, float]] = defaultdict(dict)
        for d in EventDispatch.objects.filter(event_id__in=[e["id"] for e in events]).values(
            "event_id", "subscriber", "handled_at"
        ):
            handled[d["event_id"]][d["subscriber"]] = d["handled_at"].timestamp()
        push_by_key, event_by_key = {}, {}
        for p in pushes:
            data = p["data"] or {}
            key = (data.get("metrics") or {}).get("wsb_key")
            if key is None:
                found = KEY_RE.search((data.get("notification") or {}).get("title", "") or "")
                key = int(found.group(1)) if found else None
            if key is not None:
                push_by_key[int(key)] = p
        ticket_keys = {str(t.public_id): k for k, _, t in self.tickets}
        for e in events:
            payload = e["payload"] or {}
            key = (payload.get("metrics") or {}).get("wsb_key")
            if key is None and e["type"] == "ticket.comment_added":
                key = ticket_keys.get(payload.get("ticket"))
            if key is not None:
                event_by_key[int(key)] = e
        for kind in ("pipeline_org", "pipeline_user", "soak_pipeline_org"):
            created, sent, dispatched = [], [], []
            per_subscriber: dict[str, list[float]] = defaultdict(list)
            for rnd in self.rounds:
                if rnd.kind != kind:
                    continue
                p = push_by_key.get(rnd.key)
                if p is not None:
                    created.append((p["created_at"].timestamp() - rnd.t0_wall) * 1e3)
                    if p["sent_at"]:
                        sent.append((p["sent_at"].timestamp() - rnd.t0_wall) * 1e3)
                e = event_by_key.get(rnd.key)
                if e is not None and e["dispatched_at"]:
                    dispatched.append((e["dispatched_at"].timestamp() - rnd.t0_wall) * 1e3)
                if e is not None:
                    for name, at in handled[e["id"]].items():
                        per_subscriber[name].append((at - rnd.t0_wall) * 1e3)
            if created:
                out[kind] = {
                    "push_row_created_ms": self.dist(created),
                    "push_sent_at_ms": self.dist(sent),
                    "event_dispatched_at_ms": self.dist(dispatched),
                    "subscriber_handled_at_ms": {
                        name: self.dist(v)
                        for name, v in sorted(per_subscriber.items(), key=lambda kv: pct(kv[1], 50) or 0)
                    },
                }
        return out

    def summarize(self) -> dict:
        kinds: dict[str, dict] = {}
        for kind in (
            "pipeline_org",
            "pipeline_user",
            "pipeline_ticket_update",
            "socket_org",
            "socket_user",
            "soak_pipeline_org",
        ):
            lat, last, first, send_call, gs_start, gs_call, arrival = [], [], [], [], [], [], []
            expected_total = missing = unexpected = rounds = 0
            for rnd in self.rounds:
                if kind == "pipeline_ticket_update":
                    if rnd.kind != "pipeline_user":
                        continue
                    got, expected = self.ticket_received.get((rnd.ticket, 1), {}), rnd.ticket_expected
                    arrived = self.ticket_arrived.get((rnd.ticket, 1), {})
                elif rnd.kind == kind:
                    got, expected = self.received.get(rnd.key, {}), rnd.expected
                    arrived = self.arrived.get(rnd.key, {})
                else:
                    continue
                rounds += 1
                expected_total += len(expected)
                missing += len(expected - got.keys())
                unexpected += len(got.keys() - expected)
                times = [(t - rnd.t0) * 1e3 for idx, t in got.items() if idx in expected]
                lat += times
                arrival += [(t - rnd.t0) * 1e3 for idx, t in arrived.items() if idx in expected]
                if times:
                    last.append(max(times))
                    first.append(min(times))
                if rnd.send_returned is not None:
                    send_call.append((rnd.send_returned - rnd.t0) * 1e3)
                if rnd.group_send_started is not None:
                    gs_start.append((rnd.group_send_started - rnd.t0) * 1e3)
                    gs_call.append((rnd.group_send_returned - rnd.group_send_started) * 1e3)
            if rounds:
                kinds[kind] = {
                    "rounds": rounds,
                    "expected_frames": expected_total,
                    "missing": missing,
                    "unexpected": unexpected,
                    "latency_ms": self.dist(lat),
                    "arrival_latency_ms": self.dist(arrival),
                    "first_frame_ms": self.dist(first),
                    "last_frame_ms": self.dist(last),
                    "push_send_call_ms": self.dist(send_call) if send_call else None,
                    "group_send_start_ms": self.dist(gs_start) if gs_start else None,
                    "group_send_call_ms": self.dist(gs_call) if gs_call else None,
                }
        return kinds

    def report(self, kinds: dict, breakdown: dict) -> None:
        a = self.args
        print()
        print("=" * 100)
        print(
            f"ws_bench: clients {len(self.clients)} (connected {len(self.connected)}), orgs {len(self.orgs)}, "
            f"rounds {a.rounds}, soak {a.duration}s, daphne x{len(self.daphne_pids)} {a.base_url}, "
            f"client procs {len(self.procs)} ({a.client_impl} client), connect {self.connect_mode()}, "
            f"warm tokens {bool(a.warm_tokens)}"
        )
        print(f"host: {platform.node()} nproc {os.cpu_count()}; load avg at end {os.getloadavg()}")
        s = self.connect_summary
        print(
            f"connect ({s['mode']}"
            + (f", achieved {fmt(s['offered_rate'])}/s" if s["start_lag_ms"] else "")
            + f"): {s['connected']}/{s['clients']} in {s['ramp_s']:.2f}s | handshake ms p50 {fmt(s['open_ms']['p50'])} "
            f"p95 {fmt(s['open_ms']['p95'])} p99 {fmt(s['open_ms']['p99'])} max {fmt(s['open_ms']['max'])} | "
            f"TCP connect ms p50 {fmt(s['tcp_ms']['p50'], 2)} p95 {fmt(s['tcp_ms']['p95'], 2)} | errors {s['errors']}"
        )
        print(
            f"{'commit -> frame (ms)':<26}{'rounds':>7}{'frames':>8}{'miss':>6}{'unexp':>6}{'p50':>9}{'p95':>9}"
            f"{'p99':>9}{'max':>9}{'last p50':>10}{'last p95':>10}"
        )
        for kind, k in kinds.items():
            lat, last = k["latency_ms"], k["last_frame_ms"]
            print(
                f"{kind:<26}{k['rounds']:>7}{k['expected_frames']:>8}{k['missing']:>6}{k['unexpected']:>6}"
                f"{fmt(lat['p50']):>9}{fmt(lat['p95']):>9}{fmt(lat['p99']):>9}{fmt(lat['max']):>9}"
                f"{fmt(last['p50']):>10}{fmt(last['p95']):>10}"
            )
        print("  the same frames timed when their last byte was read off the socket, before the client decoded them:")
        for kind, k in kinds.items():
            arr = k["arrival_latency_ms"]
            print(f"  {kind + ' (arrival)':<24}{fmt(arr['p50']):>31}{fmt(arr['p95']):>9}{fmt(arr['p99']):>9}{fmt(arr['max']):>9}")
        for kind, k in kinds.items():
            if k["push_send_call_ms"]:
                c, g0, g = k["push_send_call_ms"], k["group_send_start_ms"], k["group_send_call_ms"]
                print(
                    f"  {kind} (ms, p50/p95): commit -> group_send() called {fmt(g0['p50'])}/{fmt(g0['p95'])}; "
                    f"group_send() call {fmt(g['p50'])}/{fmt(g['p95'])}; commit -> push_send() "
                    f"returned (incl. the sent_at UPDATE) {fmt(c['p50'])}/{fmt(c['p95'])}"
                )
        for kind, b in breakdown.items():
            print(
                f"  {kind} (worker timestamps, ms after commit, p50/p95): push row created "
                f"{fmt(b['push_row_created_ms']['p50'])}/{fmt(b['push_row_created_ms']['p95'])}, push sent_at "
                f"{fmt(b['push_sent_at_ms']['p50'])}/{fmt(b['push_sent_at_ms']['p95'])}, event dispatched_at "
                f"{fmt(b['event_dispatched_at_ms']['p50'])}/{fmt(b['event_dispatched_at_ms']['p95'])}"
            )
            print(
                "    EventDispatch.handled_at (row insert inside each subscriber's transaction), p50: "
                + ", ".join(f"{name} {fmt(d['p50'])}" for name, d in b["subscriber_handled_at_ms"].items())
            )
        if hasattr(self, "rounds_cpu"):
            n = max(1, a.rounds)
            print(
                f"rounds phase: {self.rounds_s:.1f}s; CPU daphne {self.rounds_cpu['daphne_cpu_s']:.1f}s "
                f"({self.rounds_cpu['daphne_cpu_s'] / n * 1e3:.0f} ms per round), "
                f"worker {self.rounds_cpu['worker_cpu_s']:.1f}s, bench client processes "
                f"{self.rounds_cpu['bench_clients_cpu_s']:.1f}s (kernel {self.rounds_cpu['bench_clients_sys_s']:.1f}s); "
                f"messages read by the clients "
                f"{self.rounds_cpu['client_frames']} (unexpected kinds {self.rounds_cpu['client_other'] or 'none'})"
            )
        print(f"duplicates dropped client-side: {self.duplicates}; unexpected socket closes: {len(self.closed)}")
        conns = {m["label"]: m["redis"]["total_connections_received"] for m in self.samples}
        if "before rounds" in conns and "after rounds" in conns:
            pushes = sum(1 for r in self.rounds if r.kind.startswith(("pipeline", "socket"))) + sum(
                1 for r in self.rounds if r.kind == "pipeline_user"
            )
            print(
                f"Redis connections opened during the rounds: {conns['after rounds'] - conns['before rounds']} "
                f"(pushes sent: ~{pushes}; Celery/Daphne keep theirs open)"
            )
        for p in self.probes:
            print(
                f"probe [{p['label']}]: PG UPDATE+COMMIT p50/p95 {fmt(p['pg_commit_ms']['p50'], 2)}/"
                f"{fmt(p['pg_commit_ms']['p95'], 2)} ms, SELECT 1 p50 {fmt(p['pg_select_ms']['p50'], 2)} ms, "
                f"Redis PING p50 {fmt(p['redis_ping_ms']['p50'], 2)} ms, CPU probe {p['cpu_probe_ms']:.1f} ms, "
                f"load {p['load'][0]:.2f}"
            )
        print("memory (MB)            daphne RSS  daphne USS  worker RSS  worker USS  redis used  bench db  load1")
        for m in self.samples:
            print(
                f"  {m['label']:<20}{m['daphne']['rss_mb']:>11.1f}{m['daphne']['uss_mb']:>12.1f}"
                f"{m['worker']['rss_mb']:>12.1f}{m['worker']['uss_mb']:>12.1f}{m['redis']['used_memory_mb']:>12.2f}"
                f"{m['redis']['db_bytes_mb']:>10.2f}{m['load'][0]:>7.2f}"
            )
        print("=" * 100, flush=True)

    # -- main -----------------------------------------------------------------------------

    def run(self) -> dict:
        a = self.args
        nofile = raise_nofile()
        self.log(f"RLIMIT_NOFILE {nofile}; load avg {os.getloadavg()}")
        self.find_processes()
        self.setup_data()
        self.probe("start")
        self.memory("idle (no clients)")
        self.start_clients()
        profiler = self.start_profiler("connect")
        self.connect()
        self.stop_profiler(profiler)
        stats = self.collect_stats()
        self.log(f"negotiated extensions: {dict(stats['extensions'])}")
        time.sleep(1)
        self.pump(0)
        self.memory("connected")
        self.run_rounds()
        self.soak()
        self.probe("end")
        self.broadcast(("close",))
        deadline = time.monotonic() + 60
        while self.byes < len(self.procs) and time.monotonic() < deadline:
            self.pump(0.2)
        for proc in self.procs:
            proc.join(10)
        time.sleep(3)
        self.memory("after disconnect")
        kinds = self.summarize()
        breakdown = self.pipeline_breakdown()
        self.report(kinds, breakdown)
        result = {
            "args": vars(a),
            "nproc": os.cpu_count(),
            "connect": self.connect_summary,
            "kinds": kinds,
            "pipeline_breakdown": breakdown,
            "rounds_cpu": getattr(self, "rounds_cpu", None),
            "soak": getattr(self, "soak_summary", None),
            "memory": self.samples,
            "probes": self.probes,
            "duplicates": self.duplicates,
            "unexpected_closes": self.closed[:20],
        }
        if a.json_out:
            Path(a.json_out).write_text(json.dumps(result, indent=2, default=str))
            self.log(f"wrote {a.json_out}")
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url",
        action="append",
        help="Daphne base URL; repeat for several processes "
        "(clients are spread round-robin). Default http://127.0.0.1:8001",
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--orgs", type=int, default=1)
    parser.add_argument("--duration", type=int, default=600, help="soak seconds with all clients connected (0: none)")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--wave", type=int, default=50, help="concurrent handshakes while connecting")
    parser.add_argument(
        "--connect-rate",
        type=float,
        default=0.0,
        help="open connections at R per second in all (paced) instead of in waves of --wave (0: waves)",
    )
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument(
        "--client-impl",
        choices=["lean", "websockets"],
        default="lean",
        help="client processes: plain sockets + epoll (bench/ws_lean.py) or asyncio + websockets",
    )
    parser.add_argument("--round-timeout", type=float, default=15.0)
    parser.add_argument("--gap", type=float, default=0.2, help="pause between measurements (s)")
    parser.add_argument(
        "--soak-interval",
        type=float,
        default=30.0,
        help="publish a pipeline_org event every N s during the soak (0: idle)",
    )
    parser.add_argument("--open-timeout", type=float, default=30.0)
    parser.add_argument("--warm-tokens", action="store_true", help="tokens used recently: no last_used_at write")
    parser.add_argument("--daphne-pid", type=int, action="append")
    parser.add_argument("--worker-pid", type=int, action="append")
    parser.add_argument("--json-out")
    parser.add_argument(
        "--channel-layer",
        choices=["core", "pubsub"],
        default="core",
        help="layer this process sends with (experiment; the server must match)",
    )
    parser.add_argument("--py-spy", help="path to a py-spy binary: sample Daphne during the rounds")
    parser.add_argument("--py-spy-dir", default="/tmp/ws_bench_profiles")  # noqa: S108
    parser.add_argument(
        "--kinds",
        default="pipeline_org,pipeline_user,socket_org,socket_user",
        help="which measurements to run in each round (comma-separated)",
    )
    args = parser.parse_args(argv)
    args.base_url = args.base_url or ["http://127.0.0.1:8001"]
    args.kinds = set(args.kinds.split(","))
    django_setup()
    if args.channel_layer == "pubsub":
        # Experiment: the server must run the same layer (socket_* kinds only; the worker keeps its own).
        from django.conf import settings

        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [{"address": settings.REDIS_URL}], "prefix": "portal-ws"},
            }
        }
    Bench(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
