"""Two real Daphne processes started the way scripts/run.py starts them (ADR 0017).

On the test database and Redis, over real sockets: both processes serve /ws/, an
organization-wide push reaches the sockets of both (one relay each), a user push reaches only
its user, and the supervisor stops every child.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import threading
import time
import urllib.request

import pytest

from portal.testing import free_port, run_script

run = run_script()


def _stack_env(port: int) -> dict[str, str]:
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_ALLOW_ASYNC"))}
    return env | {
        "DEBUG": "1",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_DB": str(settings.REDIS_DB),
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
    }


def _connect_spread(stack: contextlib.ExitStack, url: str, headers_for, pids: list[int], count: int):
    """Open sockets until each Daphne process holds at least one (the kernel picks the process)."""
    import psutil
    from websockets.sync.client import connect

    opened = []
    deadline = time.monotonic() + 30
    while True:
        membership, headers = headers_for()
        opened.append((membership, stack.enter_context(connect(url, additional_headers=headers, open_timeout=15))))
        per_process = {pid: len(psutil.Process(pid).net_connections(kind="tcp")) for pid in pids}
        if len(opened) >= count and all(n > 1 for n in per_process.values()):  # listener + a socket
            return opened
        assert time.monotonic() < deadline, per_process
        assert len(opened) < 64, per_process


def _recv_json(ws, timeout: float = 10.0) -> dict:
    return json.loads(ws.recv(timeout=timeout))


@pytest.mark.django_db(transaction=True)
def test_two_daphne_processes_serve_the_socket_and_each_relays_the_org_pushes(organization, monkeypatch):
    from django.db import transaction

    from notifications import services
    from portal import services as portal_services
    from portal.tests.factories import MembershipFactory

    port = free_port()
    monkeypatch.setattr(run, "child_env", lambda: _stack_env(port) | {"PYTHONUNBUFFERED": "1"})
    sockets = run.listening_sockets(port, 2)
    children = run.daphne_children(sockets)
    supervisor = run.Supervisor(children, port, [], sockets)
    output = []
    # The supervisor's loop runs in a thread here; its signal handling is main-thread only.
    started = threading.Event()

    def serve() -> None:
        supervisor.selector = selectors.DefaultSelector()
        for child in children:
            child.start()
            supervisor.selector.register(child.proc.stdout.fileno(), selectors.EVENT_READ, child)
        for sock in sockets:
            sock.close()
        started.set()
        while supervisor.stop_signal is None:
            supervisor.pump(0.1)

    monkeypatch.setattr(run.Child, "emit", lambda self, lines: output.extend(lines))
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    opened = []
    sockets_open = contextlib.ExitStack()
    try:
        assert started.wait(10)
        deadline = time.monotonic() + 60
        while not supervisor.serving():
            assert time.monotonic() < deadline, b"\n".join(output).decode(errors="replace")[-3000:]
            assert all(c.alive() for c in children), b"\n".join(output).decode(errors="replace")[-3000:]
            time.sleep(0.1)
        assert all(sock.fileno() == -1 for sock in sockets)  # only the children hold them now

        def headers_for():
            membership = MembershipFactory(organization=organization)
            _, key = portal_services.api_token_create(membership=membership, name="ws")
            return membership, {"Authorization": f"Token {key}"}

        opened = _connect_spread(
            sockets_open, f"ws://127.0.0.1:{port}/ws/", headers_for, [c.proc.pid for c in children], 4
        )

        with transaction.atomic():
            org_push = services.push_create(organization=organization, type="metrics_update", data={"n": 1})
        for _, ws in opened:
            message = _recv_json(ws)
            assert (message["id"], message["type"]) == (org_push.pk, "metrics_update")

        target, _ = opened[-1]
        with transaction.atomic():
            user_push = services.push_create(
                organization=organization, type="notification", data={"n": 2}, user_id=target.user_id
            )
        assert _recv_json(opened[-1][1])["id"] == user_push.pk
        for _, ws in opened[:-1]:
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.5)

        # One access log line per request: the JSON one with its request id, not Daphne's own too.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10) as response:
            assert response.status == 200
        deadline = time.monotonic() + 10
        while not any(b'"path": "/accounts/login/"' in line for line in list(output)):
            assert time.monotonic() < deadline, b"\n".join(output).decode(errors="replace")[-3000:]
            time.sleep(0.05)
        time.sleep(0.3)
        assert not any(b'"GET /accounts/login/' in line for line in list(output))
    finally:
        with contextlib.suppress(Exception):
            sockets_open.close()
        supervisor.stop_signal = 15
        thread.join(10)
        supervisor.shutdown()
    assert all(c.proc.returncode is not None for c in children)
    for child in children:
        with pytest.raises(ProcessLookupError):
            os.kill(child.proc.pid, 0)
