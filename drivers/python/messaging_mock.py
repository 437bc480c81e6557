"""Start the messaging-mock binary from a Python test, and steer it through its control API.

Python 3.11+, standard library only:

    from messaging_mock import start_mock

    with start_mock(scenario="basic-conversation") as mock:   # stopped on leaving, also on error
        sdk = MySdk(base_url=mock.base_url, token=mock.connector_token, host=mock.host)
        ...
        [session] = mock.control.sessions()
        mock.control.steps(session["session_id"], {"reply": {"text": "Hi"}})

The binary is `binary=`, else $MESSAGING_MOCK_BIN, else `messaging-mock` on PATH. With pytest,
the `messaging_mock` fixture of messaging_mock_pytest does the same. See drivers/python/README.md.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import queue
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterable, Mapping

__all__ = [
    "start_mock",
    "find_binary",
    "MockHandle",
    "ControlClient",
    "ControlError",
    "MockStartError",
    "BINARY_ENV",
    "BINARY_NAME",
]

BINARY_ENV = "MESSAGING_MOCK_BIN"
BINARY_NAME = "messaging-mock"

_HOW_TO_FIND = (
    f"Pass binary=..., set {BINARY_ENV}=/path/to/messaging-mock, or put {BINARY_NAME} on PATH "
    "(`cargo install --path mock-server` in the messaging-mock repository)"
)


class MockStartError(RuntimeError):
    """The binary could not be found, did not start, or did not become ready in time."""

    def __init__(self, message: str, *, binary: str | None = None, stderr: str = "",
                 returncode: int | None = None, pid: int | None = None):
        super().__init__(message)
        self.binary = binary
        self.stderr = stderr
        self.returncode = returncode
        self.pid = pid


class ControlError(Exception):
    """A control-API call answered with a non-2xx status (`status` 0: no answer at all)."""

    def __init__(self, status: int, message: str, *, method: str = "", url: str = "", body: Any = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.method = method
        self.url = url
        self.body = body
        self.pointer = body.get("pointer") if isinstance(body, dict) else None

    def __str__(self) -> str:
        return f"{self.method} {self.url} answered {self.status}: {self.message}"


# --- finding the binary ---------------------------------------------------------------------


def _is_executable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_binary(binary: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> str:
    """The messaging-mock binary: `binary`, else $MESSAGING_MOCK_BIN, else `messaging-mock` on PATH.

    Raises MockStartError naming all three when none is usable.
    """
    env = os.environ if env is None else env

    def check(path: str, source: str) -> str:
        full = os.path.abspath(os.fspath(path))
        if not _is_executable_file(full):
            raise MockStartError(
                f"messaging-mock binary not found: {source} is {os.fspath(path)!r}, which is not an "
                f"executable file (the binary is looked for in binary=, then {BINARY_ENV}, then "
                f"{BINARY_NAME} on PATH). {_HOW_TO_FIND}",
                binary=full,
            )
        return full

    if binary:
        return check(binary, "binary=")
    if env.get(BINARY_ENV):
        return check(env[BINARY_ENV], BINARY_ENV)
    found = shutil.which(BINARY_NAME, path=env.get("PATH", ""))
    if found:
        return os.path.abspath(found)
    raise MockStartError(
        f"messaging-mock binary not found: no binary=, {BINARY_ENV} is not set, and there is no "
        f"{BINARY_NAME} on PATH. {_HOW_TO_FIND}"
    )


# --- leftover children ------------------------------------------------------------------------

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


def _kill_leftovers() -> None:
    with _live_lock:
        children = list(_live)
        _live.clear()
    for proc in children:
        try:
            proc.kill()
            proc.wait(timeout=5)
        except Exception:  # already gone, or not reaped in time: nothing more to do
            pass


# A test run that ends without stopping a mock (an exception escaping, sys.exit) kills it.
atexit.register(_kill_leftovers)


def running_mocks() -> int:
    """How many mocks this process started that are still running (for tests)."""
    with _live_lock:
        return sum(1 for p in _live if p.poll() is None)


# --- starting ---------------------------------------------------------------------------------

_STDERR_KEEP = 64 * 1024


def start_mock(
    *,
    binary: str | os.PathLike | None = None,
    scenario: str | None = None,
    seed: int | str | None = None,
    config: str | os.PathLike | None = None,
    bind: str = "127.0.0.1:0",
    control_token: str | None = None,
    log: str | None = None,
    tls: bool = False,
    args: Iterable[str] = (),
    env: Mapping[str, str | None] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float = 10.0,
    stop_grace: float = 5.0,
    request_timeout: float = 10.0,
) -> "MockHandle":
    """Start the mock on a free port and return once it printed its readiness line.

    The handle is a context manager (`with start_mock() as mock:`) that stops the mock on
    leaving, also when the body raises; without `with`, call `mock.stop()` in a `finally`.

    - `scenario`, `seed`, `config`, `bind`, `control_token`, `log` become `--scenario`, `--seed`,
      `--config`, `--bind` (default 127.0.0.1:0, a free port), `--control-token` (the control
      client then sends it), `--log`; `args` are appended as given (e.g. ["--time-scale", "100"]).
    - `tls`: `--tls`, https:// and wss:// with a throwaway CA whose PEM file is `mock.ca_file`;
      the control client trusts that CA and no other.
    - `env` is added to this process's environment (a None value removes a variable).
    - `timeout`: seconds to wait for the readiness line; then, or if the binary exits first, it
      is killed and MockStartError carries the tail of its stderr.
    - `stop_grace`: seconds stop() waits after SIGTERM before SIGKILL.
    """
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = str(value)
    path = find_binary(binary, full_env)

    argv = [path, "--bind", bind]
    if scenario is not None:
        argv += ["--scenario", os.fspath(scenario)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if config is not None:
        argv += ["--config", os.fspath(config)]
    if control_token is not None:
        argv += ["--control-token", control_token]
    if log is not None:
        argv += ["--log", log]
    if tls:
        argv.append("--tls")
    argv += [str(a) for a in args]

    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=full_env, cwd=cwd)
    except OSError as e:
        raise MockStartError(f"messaging-mock ({' '.join(argv)}) could not be started: {e}",
                             binary=path) from e
    with _live_lock:
        _live.add(proc)

    stderr_tail: collections.deque[str] = collections.deque()
    stderr_size = [0]
    stderr_lock = threading.Lock()

    def read_stderr() -> None:
        # Keep reading so the pipe never fills; keep only the tail.
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace")
            with stderr_lock:
                stderr_tail.append(line)
                stderr_size[0] += len(line)
                while stderr_size[0] > _STDERR_KEEP and len(stderr_tail) > 1:
                    stderr_size[0] -= len(stderr_tail.popleft())
        proc.stderr.close()

    lines: queue.Queue[str | None] = queue.Queue()

    def read_stdout() -> None:
        # Lines until the readiness line go to the queue; later ones are drained and dropped.
        ready_seen = False
        for raw in iter(proc.stdout.readline, b""):
            if not ready_seen:
                line = raw.decode("utf-8", "replace")
                lines.put(line)
                ready_seen = '"ready"' in line and _parse_ready(line) is not None
        proc.stdout.close()
        lines.put(None)

    stderr_thread = threading.Thread(target=read_stderr, name="messaging-mock-stderr", daemon=True)
    stdout_thread = threading.Thread(target=read_stdout, name="messaging-mock-stdout", daemon=True)
    stderr_thread.start()
    stdout_thread.start()

    def stderr_text() -> str:
        with stderr_lock:
            return "".join(stderr_tail)

    def fail(why: str) -> MockStartError:
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        with _live_lock:
            _live.discard(proc)
        stderr_thread.join(timeout=1)
        text = stderr_text()
        tail = "\n".join(text.rstrip("\n").split("\n")[-20:])
        detail = f"; its stderr ends with:\n{tail}" if text.strip() else "; it wrote nothing to stderr"
        return MockStartError(f"messaging-mock ({' '.join(argv)}) {why}{detail}", binary=path,
                              stderr=text, returncode=proc.returncode, pid=proc.pid)

    deadline = time.monotonic() + timeout
    readiness = None
    raw_line = ""
    while readiness is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise fail(f"did not print its readiness line within {timeout:g} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            try:
                code = proc.wait(timeout=2)
                how = f"status {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
            except subprocess.TimeoutExpired:
                how = "stdout closed"
            raise fail(f"exited before it was ready ({how})")
        readiness = _parse_ready(line)
        raw_line = line

    return MockHandle(proc, argv, readiness, raw_line, stderr_text, stop_grace=stop_grace,
                      control_token=control_token, request_timeout=request_timeout)


def _parse_ready(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value.get("ready") is True else None


class MockHandle:
    """A running mock. Fields mirror the readiness line; `.control` steers it; `.stop()` ends it."""

    def __init__(self, proc: subprocess.Popen, argv: list[str], readiness: dict, raw_line: str,
                 stderr_text, *, stop_grace: float, control_token: str | None, request_timeout: float):
        self.process = proc
        self.pid: int = proc.pid
        self.binary: str = argv[0]
        self.args: list[str] = argv[1:]
        self.readiness: dict = readiness
        self.base_url: str = readiness["base_url"]
        self.ws_url: str = readiness["ws_url"]
        self.control_url: str = readiness["control_url"]
        self.console_url: str = readiness["console_url"]
        self.connector_token: str = readiness["connector_token"]
        self.host: str = readiness["host"]
        self.seed: int = int(readiness["seed"])
        self.scenario: str = readiness["scenario"]
        self.profile: str | None = readiness.get("profile")
        # Under --tls: https/wss, and the CA's PEM file for the SDK to trust (removed when the
        # mock exits unless --tls-ca-out chose the path).
        self.tls: bool = readiness.get("tls") is True
        self.ca_file: str | None = readiness.get("ca_file")
        self.control = ControlClient(self.control_url, token=control_token, timeout=request_timeout,
                                     ca_file=self.ca_file)
        self._stderr_text = stderr_text
        self._grace = stop_grace
        self._stop_lock = threading.Lock()
        self._raw_line = raw_line

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.process.returncode}"
        return f"<MockHandle pid={self.pid} {self.base_url} {state}>"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stderr(self) -> str:
        """What the mock wrote to stderr (its logs), the last 64 KiB."""
        return self._stderr_text()

    def stop(self, grace: float | None = None) -> int:
        """SIGTERM, then SIGKILL when it has not exited after `grace` seconds; returns its
        exit status (negative: the signal). Calling it again is harmless."""
        grace = self._grace if grace is None else grace
        with self._stop_lock:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            with _live_lock:
                _live.discard(self.process)
            return self.process.returncode

    def __enter__(self) -> "MockHandle":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


# --- the control client -----------------------------------------------------------------------


class ControlClient:
    """A small client of the mock's control API (`/_mock/`).

    Every method returns the parsed JSON answer and raises ControlError on a non-2xx status.
    For an https control URL, `ca_file` (a PEM file) is the only CA trusted; without it, the
    system's default CAs.
    """

    def __init__(self, control_url: str, *, token: str | None = None, timeout: float = 10.0,
                 ca_file: str | os.PathLike | None = None):
        self.url = control_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.ca_file = None if ca_file is None else os.fspath(ca_file)
        # Built now, so the CA is loaded while the mock (which deletes its file on exit) runs.
        self._ssl_context = (ssl.create_default_context(cafile=self.ca_file)
                             if self.ca_file is not None and self.url.startswith("https:") else None)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        url = self.url + path
        headers = {}
        data = None
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if method != "GET":
            headers["Content-Type"] = "application/json"
            data = json.dumps({} if body is None else body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl_context) as resp:
                return _decode(resp.read(), resp.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as e:
            parsed = _decode(e.read(), e.headers.get("Content-Type", "") if e.headers else "")
            message = parsed["message"] if isinstance(parsed, dict) and isinstance(parsed.get("message"), str) \
                else (parsed if isinstance(parsed, str) and parsed else e.reason)
            raise ControlError(e.code, str(message), method=method, url=url, body=parsed) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ControlError(0, f"{method} {url} failed: {reason}", method=method, url=url) from None

    def health(self) -> dict:
        """Liveness, session count, mock clock (`ok`, `sessions`, `clock_ms`, `clock_scale`)."""
        return self.request("GET", "/health")

    def sessions(self, limit: int | None = None) -> list[dict]:
        """The sessions (the newest `limit`)."""
        return self.request("GET", "/sessions" + ("" if limit is None else f"?limit={int(limit)}"))

    def session(self, session_id: str) -> dict:
        return self.request("GET", f"/sessions/{_seg(session_id)}")

    def journal(self, session_id: str, format: str | None = None) -> list[dict] | str:
        """The journal entries; with format="jsonl", the recording text (`--scenario FILE.jsonl`)."""
        query = "" if format is None else "?format=" + urllib.parse.quote(format)
        return self.request("GET", f"/sessions/{_seg(session_id)}/journal{query}")

    def steps(self, session_id: str, steps: Any) -> dict:
        """Play scenario steps now (one or a list): {"reply": {"text": "Hi"}}, "handoff_accepted", ..."""
        return self.request("POST", f"/sessions/{_seg(session_id)}/steps", steps)

    def faults(self, session_id: str, faults: Any) -> dict:
        """Apply faults now (one or a list): "drop", {"close": 4002}, ..."""
        return self.request("POST", f"/sessions/{_seg(session_id)}/faults", faults)

    def end(self, session_id: str, reason: str | None = None) -> dict:
        """End the session (REASON_NATURAL_END unless `reason`)."""
        return self.request("POST", f"/sessions/{_seg(session_id)}/end",
                            {} if reason is None else {"reason": reason})

    def clock(self, advance_ms: int | None = None, scale: float | None = None) -> dict:
        """Move the mock clock forward (due timers fire now) and/or scale it; returns health."""
        body: dict[str, Any] = {}
        if advance_ms is not None:
            body["advance_ms"] = advance_ms
        if scale is not None:
            body["scale"] = scale
        return self.request("POST", "/clock", body)

    def next_scenario(self, name: str) -> dict:
        """The scenario of the next session."""
        return self.request("PUT", "/next-scenario", {"scenario": name})

    def connector_scenario(self, token: str, name: str) -> dict:
        """The scenario of a connector's later tokens."""
        return self.request("PUT", f"/connectors/{_seg(token)}/scenario", {"scenario": name})

    def http_failures(self, spec: Mapping[str, Any] | None = None, **fields: Any) -> dict:
        """Arm REST failures, as the API spells them: http_failures(access_token=1,
        sessions_429={"count": 1, "retry_after_seconds": 3}); returns what is armed."""
        return self.request("POST", "/http-failures", {**(spec or {}), **fields})

    def requests(self, endpoint: str | None = None, status: int | None = None,
                 session_id: str | None = None, since_ms: int | None = None,
                 until_ms: int | None = None, count: bool = False) -> list[dict] | dict:
        """Every REST call and /ws handshake, oldest first, filtered (`endpoint`: access-token,
        sessions or ws); with count=True, {"count": n} instead."""
        query = {k: v for k, v in {
            "endpoint": endpoint, "status": status, "session_id": session_id,
            "since_ms": since_ms, "until_ms": until_ms,
        }.items() if v is not None}
        if count:
            query["count"] = "true"
        text = urllib.parse.urlencode(query)
        return self.request("GET", "/requests" + (f"?{text}" if text else ""))

    def reset(self) -> dict:
        """Drop every session and control choice; returns health."""
        return self.request("POST", "/reset")

    def scenarios(self) -> list[str]:
        """The built-in scenario names."""
        return self.request("GET", "/scenarios")


def _seg(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _decode(data: bytes, content_type: str) -> Any:
    text = data.decode("utf-8", "replace")
    if "json" in content_type and text:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
