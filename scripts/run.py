#!/usr/bin/env python3
"""What `make run` executes (inside `scripts/devstack.py exec`).

1. python manage.py migrate --noinput
2. python manage.py collectstatic --noinput (quiet)
3. python manage.py seed_demo (idempotent; prints the demo logins)
4. runs together, until Ctrl-C / SIGTERM or until one of them dies:
     daphne -v 0 --fd N portal.asgi:application   x DAPHNE_PROCESSES (default: one per CPU core)
         each on its own listening socket bound to 127.0.0.1:$PORT (PORT defaults to 8000)
         with SO_REUSEPORT, so the kernel spreads connections evenly across the processes
         (ADR 0017); DAPHNE_PROCESSES=1 runs a single Daphne the same way
     celery -A portal worker -l info --concurrency 2
     celery -A portal beat -l info --schedule var/celerybeat-schedule
   Each output line is prefixed with the child's name.  On shutdown every
   child gets SIGTERM, then SIGKILL after 10 seconds.
"""

# This script starts local binaries (postgres, redis-server, the given CMD) with argv lists
# and runs fixed SQL of its own: nothing comes from untrusted input.
# ruff: noqa: S603
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# Not resolved: .venv/bin/python is a symlink and daphne/celery live beside it.
BIN_DIR = Path(sys.executable).parent
HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0
COLORS = {"daphne": "36", "worker": "33", "beat": "35"}
DAPHNE_READY = b"Listening on TCP address"  # Daphne's log line once it serves the socket
LISTEN_BACKLOG = 1024  # Daphne's own default is 50: a wave of new sockets must not be refused

USE_COLOR = sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def bold(text: str) -> str:
    return f"\033[1m{text}\033[0m" if USE_COLOR else text


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


class Interrupted(Exception):
    pass


def _interrupt(signum, _frame):
    raise Interrupted(signum)


def manage(*args: str, tee: bool = False) -> list[str]:
    """Run `python manage.py ARGS`; exit on failure. With tee, return the printed lines."""
    cmd = [PYTHON, "manage.py", *args]
    if not tee:
        result = subprocess.run(cmd, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            out(f"run: `manage.py {' '.join(args)}` failed with exit code {result.returncode}")
            sys.exit(result.returncode)
        return []
    lines = []
    with subprocess.Popen(
        cmd, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    ) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line.rstrip("\n"))
    if proc.returncode != 0:
        out(f"run: `manage.py {' '.join(args)}` failed with exit code {proc.returncode}")
        sys.exit(proc.returncode)
    return lines


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if run.py itself is killed (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def daphne_processes() -> int:
    """How many Daphne processes to start: DAPHNE_PROCESSES, else one per CPU core we may use."""
    text = os.environ.get("DAPHNE_PROCESSES", "").strip()
    if text:
        value = int(text)  # ValueError is reported by main()
        if value < 1:
            raise ValueError(text)
        return value
    with contextlib.suppress(AttributeError):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def listening_sockets(port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on HOST:port, one per Daphne process.

    SO_REUSEPORT lets every socket bind the same port, and the kernel spreads incoming
    connections across them by hash, so each process accepts its share. (With one shared
    socket, Twisted accepts up to 100 pending connections per wake-up, so one process tends
    to take a whole burst while the other idles.)
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if count > 1:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((HOST, port))
            sock.listen(LISTEN_BACKLOG)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def daphne_children(sockets: list[socket.socket]) -> list[Child]:
    """One Daphne per listening socket, serving the inherited descriptor (``daphne --fd N``)."""
    children = []
    for number, sock in enumerate(sockets, start=1):
        name = "daphne" if len(sockets) == 1 else f"daphne{number}"
        # -v 0: no second access log in Daphne's own format; the request log (JSON, with the request
        # id) is portal.middleware's, and Daphne's other messages go through LOGGING as before.
        argv = [str(BIN_DIR / "daphne"), "-v", "0", "--fd", str(sock.fileno()), "portal.asgi:application"]
        child = Child(name, argv, pass_fds=(sock.fileno(),), color="daphne")
        child.ready_marker = DAPHNE_READY
        children.append(child)
    return children


class Child:
    label_width = 6

    def __init__(self, name: str, argv: list[str], pass_fds: tuple[int, ...] = (), color: str | None = None):
        self.name = name
        self.argv = argv
        self.pass_fds = pass_fds
        self.color = color or name
        self.proc: subprocess.Popen | None = None
        self.buffer = b""
        # A child with a marker is ready once it printed it (the sockets accept connections as
        # soon as they listen, before Daphne has loaded the application).
        self.ready_marker: bytes | None = None
        self.ready = False

    @property
    def prefix(self) -> bytes:
        label = f"{self.name:>{self.label_width}} | "
        return (f"\033[{COLORS.get(self.color, '0')}m{label}\033[0m" if USE_COLOR else label).encode()

    def start(self) -> None:
        parent = os.getpid()

        def preexec() -> None:
            _die_with_parent()
            if os.getppid() != parent:  # parent already gone
                os._exit(1)

        # Own session: a terminal Ctrl-C reaches only run.py, which then stops
        # every child in order (no double signals to celery).
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
            pass_fds=self.pass_fds,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def feed(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        self.lines(lines)

    def flush(self) -> None:
        if self.buffer:
            self.lines([self.buffer])
            self.buffer = b""

    def lines(self, lines: list[bytes]) -> None:
        if self.ready_marker is not None and not self.ready:
            self.ready = any(self.ready_marker in line for line in lines)
        self.emit(lines)

    def emit(self, lines) -> None:
        if lines:
            sys.stdout.buffer.write(b"".join(self.prefix + line.rstrip(b"\r") + b"\n" for line in lines))
            sys.stdout.buffer.flush()

    def signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the child's process group (e.g. celery pool processes)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class Supervisor:
    def __init__(self, children: list[Child], port: int, logins: list[str], sockets: list[socket.socket] | None = None):
        self.children = children
        # Listening sockets handed to the Daphne children: closed here once they are started
        # (the children hold their own copies), so this process never accepts a connection.
        self.sockets = sockets or []
        Child.label_width = max(6, *(len(c.name) for c in children))
        self.port = port
        self.logins = logins
        self.selector = selectors.DefaultSelector()
        self.stop_signal: int | None = None
        self.banner_shown = False

    def _on_signal(self, signum, _frame) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum

    def pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            if key.data is None:  # signal wake-up pipe
                with contextlib.suppress(BlockingIOError):
                    while os.read(key.fd, 512):
                        pass
                continue
            child: Child = key.data
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                data = b""
            if data:
                child.feed(data)
            else:
                child.flush()
                self.selector.unregister(key.fd)

    def serving(self) -> bool:
        waiting = [c for c in self.children if c.ready_marker is not None]
        if waiting:
            return all(c.ready for c in waiting)
        return port_in_use(self.port)

    def banner(self) -> None:
        url = f"http://{HOST}:{self.port}/"
        rule = "=" * 64
        lines = ["", rule, bold(f"SecureBase Portal is running at {url}")]
        if self.logins:
            lines.append("")
            lines += [f"  {line}" for line in self.logins if line.strip()]
        lines += ["", "Press Ctrl-C to stop.", rule, ""]
        out("\n".join(lines))
        self.banner_shown = True

    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

        failed: Child | None = None
        try:
            for child in self.children:
                child.start()
                self.selector.register(child.proc.stdout.fileno(), selectors.EVENT_READ, child)
        finally:
            for sock in self.sockets:
                sock.close()

        while self.stop_signal is None:
            self.pump(0.25)
            dead = [c for c in self.children if not c.alive()]
            if dead:
                failed = dead[0]
                break
            if not self.banner_shown and self.serving():
                self.banner()

        if failed is not None:
            self.pump(0)
            out(f"run: {failed.name} exited with code {failed.proc.returncode}; stopping the others")
        else:
            out(f"\nrun: received {signal.Signals(self.stop_signal).name}, stopping")
        self.shutdown()
        if failed is not None:
            code = failed.proc.returncode
            return code if code and code > 0 else 1
        return 0

    def shutdown(self) -> None:
        for child in self.children:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(c.alive() for c in self.children):
            self.pump(0.1)
        for child in self.children:
            if child.alive():
                out(f"run: {child.name} did not stop within {STOP_TIMEOUT:.0f}s; killing it")
            child.kill_group()  # also catches leftovers (pool processes) of children that did stop
        for child in self.children:
            if child.proc is not None:
                child.proc.wait()
        self.pump(0)
        for child in self.children:
            child.flush()


def main() -> int:
    os.chdir(ROOT)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)

    port_text = os.environ.get("PORT", "8000")
    try:
        port = int(port_text)
    except ValueError:
        out(f"run: PORT must be a number, got {port_text!r}")
        return 2
    try:
        processes = daphne_processes()
    except ValueError:
        out(f"run: DAPHNE_PROCESSES must be a positive number, got {os.environ.get('DAPHNE_PROCESSES')!r}")
        return 2
    if port_in_use(port):
        out(f"run: port {port} on {HOST} is already in use; stop the other server or use e.g. `PORT=8001 make run`")
        return 1

    try:
        manage("migrate", "--noinput")
        manage("collectstatic", "--noinput", "--verbosity", "0")
        logins = manage("seed_demo", tee=True)
    except (KeyboardInterrupt, Interrupted):
        out("\nrun: interrupted")
        return 130

    (ROOT / "var").mkdir(exist_ok=True)
    try:
        sockets = listening_sockets(port, processes)
    except OSError as exc:
        out(f"run: cannot listen on {HOST}:{port}: {exc}")
        return 1
    children = [
        *daphne_children(sockets),
        Child("worker", [str(BIN_DIR / "celery"), "-A", "portal", "worker", "-l", "info", "--concurrency", "2"]),
        Child(
            "beat",
            [
                str(BIN_DIR / "celery"),
                "-A",
                "portal",
                "beat",
                "-l",
                "info",
                "--schedule",
                str(Path("var") / "celerybeat-schedule"),
            ],
        ),
    ]
    for child in children:
        if not Path(child.argv[0]).exists():
            out(f"run: {child.argv[0]} not found; run `make .venv/.installed`")
            for sock in sockets:
                sock.close()
            return 1
    return Supervisor(children, port, logins, sockets).run()


if __name__ == "__main__":
    sys.exit(main())
