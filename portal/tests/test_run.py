"""scripts/run.py (what `make run` starts): one Daphne per core on SO_REUSEPORT sockets.

Two real Daphne processes started this way, serving live pushes, are tested in
notifications/tests/test_daphne_processes.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest

from portal.testing import free_port, run_script

ROOT = Path(__file__).resolve().parents[2]


run = run_script()


def test_daphne_processes_defaults_to_the_usable_cores_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv("DAPHNE_PROCESSES", raising=False)
    assert run.daphne_processes() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("DAPHNE_PROCESSES", "3")
    assert run.daphne_processes() == 3
    for bad in ("0", "-1", "two"):
        monkeypatch.setenv("DAPHNE_PROCESSES", bad)
        with pytest.raises(ValueError):
            run.daphne_processes()


def test_main_refuses_a_bad_process_count(monkeypatch, capsys):
    monkeypatch.setenv("DAPHNE_PROCESSES", "none")
    monkeypatch.setenv("PORT", str(free_port()))
    monkeypatch.chdir(ROOT)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        assert run.main() == 2
    finally:
        for signum, handler in handlers.items():  # main() installs its own
            signal.signal(signum, handler)
    assert "DAPHNE_PROCESSES must be a positive number" in capsys.readouterr().out


def test_listening_sockets_share_the_port_and_the_kernel_spreads_connections():
    port = free_port()
    sockets = run.listening_sockets(port, 2)
    clients = []
    try:
        assert [s.getsockname() for s in sockets] == [(run.HOST, port)] * 2
        assert all(s.get_inheritable() for s in sockets)
        for _ in range(64):
            client = socket.create_connection((run.HOST, port), timeout=5)
            clients.append(client)
        accepted = []
        for sock in sockets:
            sock.setblocking(False)
            count = 0
            with contextlib.suppress(BlockingIOError):
                while True:
                    conn, _ = sock.accept()
                    conn.close()
                    count += 1
            accepted.append(count)
        assert sum(accepted) == 64
        assert min(accepted) > 0, accepted  # both processes would get a share
    finally:
        for s in clients + sockets:
            s.close()


def test_a_port_taken_by_another_server_is_refused():
    with socket.socket() as other:
        other.bind((run.HOST, 0))
        other.listen()
        with pytest.raises(OSError):
            run.listening_sockets(other.getsockname()[1], 2)


def test_one_daphne_per_socket_each_serving_its_inherited_descriptor():
    sockets = run.listening_sockets(free_port(), 2)
    try:
        children = run.daphne_children(sockets)
        assert [c.name for c in children] == ["daphne1", "daphne2"]
        for child, sock in zip(children, sockets, strict=True):
            assert child.argv[1:] == ["-v", "0", "--fd", str(sock.fileno()), "portal.asgi:application"]
            assert child.pass_fds == (sock.fileno(),)
        single = run.daphne_children(sockets[:1])
        assert [c.name for c in single] == ["daphne"]
    finally:
        for sock in sockets:
            sock.close()
