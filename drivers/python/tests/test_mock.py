"""Tests of messaging_mock (and messaging_mock_pytest) against the real messaging-mock binary.

    python3 -m unittest discover -s drivers/python/tests      (from the repo root)

The binary: $MESSAGING_MOCK_BIN, else target/debug/messaging-mock when it exists (this module
sets the variable then), else `messaging-mock` on PATH. Without one these tests skip, saying
why, except under CI=true, where they fail.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import types
import unittest
import urllib.error
import urllib.parse
import urllib.request

HELPER_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
REPO = os.path.normpath(os.path.join(HELPER_DIR, "..", ".."))
sys.path.insert(0, HELPER_DIR)

import messaging_driver  # noqa: E402
import messaging_mock  # noqa: E402
from messaging_mock import ControlClient, ControlError, MockStartError, find_binary, start_mock  # noqa: E402

DEFAULT_BIN = os.path.join(REPO, "target", "debug", "messaging-mock")
if not os.environ.get("MESSAGING_MOCK_BIN") and os.path.isfile(DEFAULT_BIN):
    os.environ["MESSAGING_MOCK_BIN"] = DEFAULT_BIN

# The rule of tools/browser_test.rs: under CI a missing prerequisite fails the test.
CI = os.environ.get("CI", "") not in ("", "false", "0")
try:
    find_binary()
    BINARY_PROBLEM = None
except MockStartError as e:
    BINARY_PROBLEM = str(e)


def needs_binary(test):
    return unittest.skipIf(BINARY_PROBLEM is not None and not CI,
                           f"no messaging-mock binary ({BINARY_PROBLEM})")(test)


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie counts as gone: nobody may reap it here)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] != "Z"
    except OSError:
        return False


def script(directory: str, name: str, body: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(textwrap.dedent(body).lstrip())
    os.chmod(path, 0o755)
    return path


def env_without(*names: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(extra)
    return env


class GoneMixin:
    def assertGone(self, pid: int, what: str, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(alive(pid), f"{what}: process {pid} is still running")


# --- a WebSocket client in the standard library, just enough for a conversation ---------------


class MiniWebSocket:
    def __init__(self, url: str, timeout: float = 10.0):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        target = u.path + (f"?{u.query}" if u.query else "")
        self.sock.sendall((f"GET {target} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ", 2)[1])
        self.events: list[dict] = []
        self.close_code: int | None = None

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the TCP connection")
        return data

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self._recv()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            header = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            header = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, value) -> None:
        self._send_frame(1, json.dumps(value).encode())

    def close(self, code: int = 1000) -> None:
        try:
            self._send_frame(8, code.to_bytes(2, "big"))
        except OSError:
            pass
        self.sock.close()

    def _read_message(self) -> tuple[int, bytes]:
        message, first_opcode = b"", None
        while True:
            b0, b1 = self._take(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._take(2), "big")
            elif n == 127:
                n = int.from_bytes(self._take(8), "big")
            payload = self._take(n)
            opcode = b0 & 0x0F
            if opcode >= 8:  # control frames come whole, between fragments too
                if opcode == 9:
                    self._send_frame(10, payload)
                    continue
                if opcode == 10:
                    continue
                return opcode, payload
            first_opcode = opcode if first_opcode is None else first_opcode
            message += payload
            if b0 & 0x80:
                return first_opcode, message

    def until(self, predicate, what: str, seconds: float = 8.0):
        """Reads frames (batches unpacked into self.events) until predicate(self) is truthy."""
        deadline = time.monotonic() + seconds
        while True:
            found = predicate(self)
            if found:
                return found
            if self.close_code is not None:
                raise AssertionError(f"closed ({self.close_code}) while waiting for {what}: {self.events}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.events}")
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                opcode, payload = self._read_message()
            except (socket.timeout, TimeoutError):
                continue
            if opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                continue
            event = json.loads(payload)
            self.events.extend(event["payload"]["events"] if event["type"] == "EVENT_TYPE_EVENT_BATCH" else [event])


def post_json(url: str, body, headers: dict) -> tuple[int, dict | str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# --- finding and starting -------------------------------------------------------------------


class FindingTheBinary(unittest.TestCase):
    def test_a_bad_path_names_all_three_places(self):
        with self.assertRaises(MockStartError) as caught:
            start_mock(binary="/nonexistent/messaging-mock")
        message = str(caught.exception)
        self.assertIn("binary= is '/nonexistent/messaging-mock', which is not an executable file", message)
        for place in ("binary=", "MESSAGING_MOCK_BIN", "PATH"):
            self.assertIn(place, message)
        with self.assertRaisesRegex(MockStartError, "MESSAGING_MOCK_BIN is '/nonexistent/bin', which is not an executable file"):
            start_mock(env={"MESSAGING_MOCK_BIN": "/nonexistent/bin"})
        with tempfile.TemporaryDirectory() as empty:
            with self.assertRaisesRegex(MockStartError, "no binary=, MESSAGING_MOCK_BIN is not set, and there is no messaging-mock on PATH"):
                find_binary(env={"PATH": empty})
            with self.assertRaisesRegex(MockStartError, "not an executable file"):
                find_binary(empty)  # a directory
        self.assertEqual(messaging_mock.running_mocks(), 0)

    def test_path_lookup(self):
        with tempfile.TemporaryDirectory() as d:
            fake = script(d, "messaging-mock", "#!/bin/sh\n")
            self.assertEqual(find_binary(env={"PATH": d}), fake)


class StartingAndStopping(GoneMixin, unittest.TestCase):
    def test_a_binary_that_never_gets_ready_is_killed_after_the_timeout(self):
        with tempfile.TemporaryDirectory() as d:
            silent = script(d, "silent", """
                #!/bin/sh
                echo "starting up, slowly" >&2
                exec sleep 60
            """)
            started = time.monotonic()
            with self.assertRaises(MockStartError) as caught:
                start_mock(binary=silent, timeout=0.7)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn("did not print its readiness line within 0.7 s", str(caught.exception))
        self.assertIn("starting up, slowly", str(caught.exception))
        self.assertGone(caught.exception.pid, "the timed-out start")
        self.assertEqual(messaging_mock.running_mocks(), 0)

    def test_stop_falls_back_to_sigkill_after_the_grace(self):
        with tempfile.TemporaryDirectory() as d:
            stubborn = script(d, "stubborn", """
                #!/bin/sh
                trap '' TERM
                echo '{"ready":true,"base_url":"http://127.0.0.1:9","ws_url":"ws://127.0.0.1:9/ws","connector_token":"t","host":"localhost","seed":18446744073709551615,"scenario":"none","profile":"current","console_url":"http://127.0.0.1:9/_mock/ui/","control_url":"http://127.0.0.1:9/_mock"}'
                exec sleep 60
            """)
            mock = start_mock(binary=stubborn, stop_grace=0.3)
        self.assertEqual(mock.seed, 18446744073709551615)
        self.assertTrue(mock.running)
        self.assertEqual(mock.stop(), -9)
        self.assertFalse(mock.running)
        self.assertGone(mock.pid, "stubborn mock")
        self.assertEqual(mock.stop(), -9, "stop() twice is harmless")

    @needs_binary
    def test_a_binary_that_exits_before_it_is_ready(self):
        with self.assertRaises(MockStartError) as caught:
            start_mock(args=["--no-such-flag"])
        self.assertIn("exited before it was ready (status 2)", str(caught.exception))
        self.assertIn("unexpected argument '--no-such-flag'", str(caught.exception))
        self.assertEqual(caught.exception.returncode, 2)
        self.assertEqual(messaging_mock.running_mocks(), 0)

    @needs_binary
    def test_the_handle_mirrors_the_readiness_line_and_options_become_flags(self):
        with tempfile.TemporaryDirectory() as d:
            config = os.path.join(d, "config.json")
            with open(config, "w") as f:
                json.dump({"connectors": [{"id": "acme", "token": "tok-acme", "host": "https://www.acme.example"}]}, f)
            with start_mock(scenario="basic-conversation", seed=18446744073709551615, config=config,
                            env={"MESSAGING_MOCK_PROFILE": "2026-05"}) as mock:
                self.assertEqual(mock.seed, 18446744073709551615)
                self.assertEqual(mock.scenario, "basic-conversation")
                self.assertEqual(mock.profile, "2026-05", "env reaches the binary")
                self.assertRegex(mock.base_url, r"^http://127\.0\.0\.1:\d+$")
                self.assertNotEqual(urllib.parse.urlsplit(mock.base_url).port, 8080)
                self.assertEqual(mock.ws_url, mock.base_url.replace("http", "ws") + "/ws")
                self.assertEqual(mock.control_url, mock.base_url + "/_mock")
                self.assertEqual(mock.console_url, mock.base_url + "/_mock/ui/")
                # The config's connector replaces the default one, and the readiness line names it.
                self.assertEqual((mock.connector_token, mock.host), ("tok-acme", "https://www.acme.example"))
                self.assertEqual(mock.args[:2], ["--bind", "127.0.0.1:0"])
                status, _ = post_json(f"{mock.base_url}/api/v1/access-token", {},
                                      {"X-Token": "tok-acme", "X-Host": "www.acme.example"})
                self.assertEqual(status, 200)
        self.assertFalse(mock.running)
        self.assertGone(mock.pid, "leaving the with block")
        self.assertIn("stopped", mock.stderr(), "the mock's logs are kept")

    @needs_binary
    def test_leaving_the_with_block_by_an_exception_stops_the_mock(self):
        pid = None
        with self.assertRaisesRegex(ValueError, "the test blew up"):
            with start_mock() as mock:
                pid = mock.pid
                self.assertTrue(alive(pid))
                raise ValueError("the test blew up")
        self.assertGone(pid, "__exit__ on an exception")
        self.assertEqual(messaging_mock.running_mocks(), 0)

    @needs_binary
    def test_a_process_that_dies_without_stop_kills_its_mock_on_the_way_out(self):
        with tempfile.TemporaryDirectory() as d:
            for how, code in (("raise", 1), ("exit", 3)):
                pid_file = os.path.join(d, f"pid-{how}")
                run = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
                    import sys
                    sys.path.insert(0, {HELPER_DIR!r})
                    from messaging_mock import start_mock
                    mock = start_mock()
                    open({pid_file!r}, "w").write(str(mock.pid))
                    if {how!r} == "exit":
                        sys.exit(3)
                    raise RuntimeError("the test blew up")
                """)], capture_output=True, text=True, timeout=30)
                self.assertEqual(run.returncode, code, run.stderr)
                with open(pid_file) as f:
                    self.assertGone(int(f.read()), f"the atexit hook ({how})")

    @needs_binary
    def test_a_control_token_is_sent_by_the_client(self):
        with start_mock(control_token="s3cret") as mock:
            self.assertTrue(mock.control.health()["ok"])
            with self.assertRaises(ControlError) as caught:
                ControlClient(mock.control_url).health()
            self.assertEqual(caught.exception.status, 401)

    @needs_binary
    def test_tls_the_control_client_trusts_the_mocks_ca_and_no_other(self):
        # A second mock only for its CA: a real CA that did not sign the first mock's certificate.
        with start_mock(tls=True) as mock, start_mock(tls=True) as other:
            self.assertTrue(mock.tls)
            self.assertEqual(mock.args[-1], "--tls")
            self.assertRegex(mock.base_url, r"^https://127\.0\.0\.1:\d+$")
            self.assertEqual(mock.ws_url, mock.base_url.replace("https", "wss") + "/ws")
            self.assertEqual(mock.control_url, mock.base_url + "/_mock")
            self.assertTrue(os.path.isfile(mock.ca_file), mock.ca_file)
            with open(mock.ca_file) as f:
                pem = f.read()
            self.assertRegex(pem, r"^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\s*$")

            self.assertTrue(mock.control.health()["ok"], "the handle's client trusts the mock's CA")
            # Errors still carry the server's answer over https.
            with self.assertRaises(ControlError) as caught:
                mock.control.session("no-such-session")
            self.assertEqual(caught.exception.status, 404)
            for what, client in (("without the CA", ControlClient(mock.control_url)),
                                 ("with another mock's CA", ControlClient(mock.control_url, ca_file=other.ca_file))):
                with self.subTest(what), self.assertRaises(ControlError) as caught:
                    client.health()
                self.assertEqual(caught.exception.status, 0, what)
                self.assertIn("CERTIFICATE_VERIFY_FAILED", caught.exception.message, what)
            ca_file = mock.ca_file
        self.assertFalse(os.path.exists(ca_file), "the default CA file goes with the mock")


# --- a conversation, and every control-client method -------------------------------------------


class Conversation(GoneMixin, unittest.TestCase):
    @needs_binary
    def test_a_conversation_steered_with_every_control_client_method(self):
        with start_mock(seed=7) as mock:
            c = mock.control
            pid = mock.pid

            health = c.health()
            self.assertEqual((health["ok"], health["sessions"]), (True, 0))
            scenarios = c.scenarios()
            self.assertIn("basic-conversation", scenarios)
            self.assertIn("playground", scenarios)
            self.assertEqual(c.next_scenario("playground"), {"scenario": "playground"})
            self.assertEqual(c.connector_scenario(mock.connector_token, "playground"), {"scenario": "playground"})
            self.assertEqual(c.http_failures(access_token=1)["access_token"], 1)

            # REST: the armed failure first, then a token and a session.
            headers = {"X-Token": mock.connector_token, "X-Host": mock.host}
            status, body = post_json(f"{mock.base_url}/api/v1/access-token", {}, headers)
            self.assertEqual(status, 500, body)
            status, body = post_json(f"{mock.base_url}/api/v1/access-token", {}, headers)
            self.assertEqual(status, 200, body)
            token = body["access_token"]
            status, body = post_json(f"{mock.base_url}/api/v1/sessions", {"streaming_enabled": False},
                                     {"Authorization": f"Bearer {token}"})
            self.assertEqual(status, 200, body)
            sid = body["session_id"]

            # WebSocket: history, join, greeting, a message and its answer.
            ws = MiniWebSocket(f"{mock.ws_url}?session_id={urllib.parse.quote(sid)}&access_token={urllib.parse.quote(token)}")
            self.addCleanup(ws.close)
            self.assertEqual(ws.status, 101)
            ws.until(lambda w: any(e["type"] == "EVENT_TYPE_SESSION_START" for e in w.events), "the history")
            ws.send({"type": "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", "payload": {}})
            ws.until(lambda w: any(e["type"] == "EVENT_TYPE_POLY_AGENT_MESSAGE" for e in w.events), "the greeting")
            ws.send({"type": "EVENT_TYPE_USER_MESSAGE", "payload": {"text": "hello"}})
            ws.until(lambda w: any(e.get("payload", {}).get("text") == "You said: hello" for e in w.events), "the answer")

            # Sessions.
            [summary] = c.sessions(1)
            self.assertEqual((summary["session_id"], summary["open_sockets"]), (sid, 1))
            self.assertEqual(len(c.sessions()), 1)
            self.assertEqual(c.session(sid)["state"], "agent")

            # A step the client receives, a fault that duplicates the next event.
            self.assertEqual(c.steps(sid, {"reply": {"text": "pushed by the test"}}), {"accepted": 1})
            ws.until(lambda w: any(e.get("payload", {}).get("text") == "pushed by the test" for e in w.events), "the pushed reply")
            self.assertEqual(c.faults(sid, "duplicate_next"), {"accepted": 1})
            c.steps(sid, [{"reply": {"text": "said twice"}}])
            ws.until(lambda w: sum(e.get("payload", {}).get("text") == "said twice" for e in w.events) == 2, "the duplicate")

            # The clock.
            before = c.health()["clock_ms"]
            self.assertGreaterEqual(c.clock(advance_ms=60_000)["clock_ms"], before + 60_000)
            self.assertEqual(c.clock(scale=2)["clock_scale"], 2)

            # Ending.
            c.end(sid, "REASON_NATURAL_END")
            ws.until(lambda w: any(e["type"] == "EVENT_TYPE_SESSION_END" for e in w.events), "SESSION_END")
            ws.until(lambda w: w.close_code is not None or None, "the close")  # noqa
            self.assertEqual(ws.close_code, 1000)
            self.assertTrue(c.session(sid)["state"].startswith("ended:"))

            # The journal, as entries and as a recording.
            journal = c.journal(sid)
            self.assertIsInstance(journal, list)
            self.assertGreater(len(journal), 5)
            self.assertIn("You said: hello", json.dumps(journal))
            recording = c.journal(sid, format="jsonl")
            self.assertIsInstance(recording, str)
            self.assertGreaterEqual(len([json.loads(l) for l in recording.strip().splitlines()]), len(journal) - 1)

            # requests(): every REST call and handshake, filtered.
            calls = c.requests()
            self.assertEqual([(x["endpoint"], x["status"]) for x in calls], [
                ("/api/v1/access-token", 500), ("/api/v1/access-token", 200), ("/api/v1/sessions", 200), ("/ws", 101)])
            self.assertEqual(c.requests(count=True), {"count": 4})
            [refused] = c.requests(status=500)
            self.assertEqual(refused["error"], "Failed to create access token")
            self.assertEqual([x["session_id"] for x in c.requests(endpoint="ws", session_id=sid)], [sid])
            self.assertEqual(c.requests(endpoint="sessions", count=True), {"count": 1})
            self.assertEqual(c.requests(since_ms=calls[1]["at_ms"], count=True), {"count": 3})
            self.assertEqual(c.requests(until_ms=calls[0]["at_ms"], count=True), {"count": 0})

            # Refusals carry the status and the server's message.
            with self.assertRaises(ControlError) as caught:
                c.session("no-such-session")
            self.assertEqual((caught.exception.status, caught.exception.message), (404, "no session `no-such-session`"))
            with self.assertRaises(ControlError) as caught:
                c.steps(sid, {"not_a_step": 1})
            self.assertEqual(caught.exception.status, 400)
            self.assertTrue(caught.exception.message)
            with self.assertRaises(ControlError) as caught:
                c.requests(endpoint="nope")
            self.assertEqual(caught.exception.status, 400)
            with self.assertRaisesRegex(ControlError, "no scenario named `no-such-scenario`"):
                c.next_scenario("no-such-scenario")

            # Reset drops the sessions.
            self.assertEqual(c.reset()["sessions"], 0)
            self.assertEqual(c.sessions(), [])
        self.assertGone(pid, "leaving the with block")


# --- the pytest fixture -------------------------------------------------------------------------


def pytest_python() -> str | None:
    """A Python that has pytest: this one, else target/py-venv's."""
    for python in (sys.executable, os.path.join(REPO, "target", "py-venv", "bin", "python")):
        if os.path.exists(python) and subprocess.run([python, "-c", "import pytest"], capture_output=True).returncode == 0:
            return python
    return None


class PytestFixture(GoneMixin, unittest.TestCase):
    def test_messaging_mock_does_not_import_pytest(self):
        run = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                              "import messaging_mock, messaging_driver; print('pytest' in sys.modules)", HELPER_DIR],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.stdout.strip(), "False", run.stderr)

    @needs_binary
    def test_the_fixtures_start_and_stop_the_mock_without_pytest_installed(self):
        # The fixture functions run under a stand-in `pytest` whose decorators change nothing,
        # so this runs wherever the tests do; the next test runs them under the real pytest.
        stub = types.ModuleType("pytest")
        stub.fixture = lambda f: f
        saved = sys.modules.get("pytest")
        sys.modules["pytest"] = stub
        sys.modules.pop("messaging_mock_pytest", None)
        try:
            import messaging_mock_pytest as plugin
        finally:
            if saved is None:
                sys.modules.pop("pytest")
            else:
                sys.modules["pytest"] = saved
            sys.modules.pop("messaging_mock_pytest", None)

        marker = types.SimpleNamespace(kwargs={"scenario": "basic-conversation", "seed": 5})
        request = types.SimpleNamespace(node=types.SimpleNamespace(get_closest_marker=lambda name: marker if name == "messaging_mock" else None))
        fixture = plugin.messaging_mock(request)
        mock = next(fixture)
        self.assertEqual((mock.scenario, mock.seed), ("basic-conversation", 5))
        self.assertTrue(mock.control.health()["ok"])
        with self.assertRaises(StopIteration):
            next(fixture)  # teardown
        self.assertGone(mock.pid, "fixture teardown")

        # Teardown after a failing test: pytest throws into the generator.
        fixture = plugin.messaging_mock(types.SimpleNamespace(node=types.SimpleNamespace(get_closest_marker=lambda name: None)))
        mock = next(fixture)
        with self.assertRaises(AssertionError):
            fixture.throw(AssertionError("the test failed"))
        self.assertGone(mock.pid, "fixture teardown after a failure")

        factory_fixture = plugin.messaging_mock_factory()
        factory = next(factory_fixture)
        a, b = factory(), factory(args=["--profile", "2026-05"])
        self.assertEqual(b.profile, "2026-05")
        with self.assertRaises(StopIteration):
            next(factory_fixture)
        self.assertGone(a.pid, "factory teardown")
        self.assertGone(b.pid, "factory teardown")

    @needs_binary
    def test_the_fixture_under_pytest(self):
        python = pytest_python()
        if python is None:
            # .ci/run installs pytest into target/py-venv; elsewhere its absence skips.
            why = "pytest is not installed (neither here nor in target/py-venv)"
            if os.environ.get("CI", "") not in ("", "0", "false"):
                self.fail(f"CI=true, but {why}")
            self.skipTest(why)
        with tempfile.TemporaryDirectory() as d:
            pid_file = os.path.join(d, "pids")
            with open(os.path.join(d, "test_sdk.py"), "w") as f:
                f.write(textwrap.dedent(f"""
                    import json, urllib.request
                    import pytest

                    def record(mock):
                        with open({pid_file!r}, "a") as f:
                            f.write(f"{{mock.pid}}\\n")

                    def test_plain(messaging_mock):
                        record(messaging_mock)
                        assert messaging_mock.control.health()["ok"]
                        req = urllib.request.Request(messaging_mock.base_url + "/api/v1/access-token", data=b"{{}}",
                            method="POST", headers={{"Content-Type": "application/json",
                            "X-Token": messaging_mock.connector_token, "X-Host": messaging_mock.host}})
                        assert json.load(urllib.request.urlopen(req))["access_token"]
                        assert messaging_mock.control.requests(count=True) == {{"count": 1}}

                    @pytest.mark.messaging_mock(scenario="basic-conversation", seed=11)
                    def test_marker(messaging_mock):
                        record(messaging_mock)
                        assert (messaging_mock.scenario, messaging_mock.seed) == ("basic-conversation", 11)

                    def test_factory(messaging_mock_factory):
                        record(messaging_mock_factory())
                        record(messaging_mock_factory(scenario="basic-conversation"))

                    def test_fails_on_purpose(messaging_mock):
                        record(messaging_mock)
                        assert False, "fails on purpose"
                """))
            run = subprocess.run(
                [python, "-m", "pytest", "-p", "messaging_mock_pytest", "--strict-markers", "-q", "-p", "no:cacheprovider", "test_sdk.py"],
                cwd=d, capture_output=True, text=True, timeout=60,
                env=env_without("PYTEST_ADDOPTS", PYTHONPATH=HELPER_DIR))
            self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
            self.assertIn("1 failed, 3 passed", run.stdout, run.stdout + run.stderr)
            with open(pid_file) as f:
                pids = [int(p) for p in f.read().split()]
            self.assertEqual(len(pids), 5)
            for pid in pids:
                self.assertGone(pid, "pytest teardown")


# --- the schema and the package ---------------------------------------------------------------


class SchemaAndPackage(GoneMixin, unittest.TestCase):
    COPY = os.path.join(HELPER_DIR, "driver-view.schema.json")
    REPO_SCHEMA = os.path.join(REPO, "schemas", "conformance", "driver-view.schema.json")

    def test_the_packaged_copy_is_the_repository_file_byte_for_byte(self):
        with open(self.COPY, "rb") as a, open(self.REPO_SCHEMA, "rb") as b:
            self.assertEqual(a.read(), b.read(), "drivers/python/driver-view.schema.json differs from "
                             "schemas/conformance/driver-view.schema.json: copy it again")

    def test_the_copy_beside_the_module_comes_first(self):
        self.assertEqual(messaging_driver.SCHEMA_CANDIDATES, (self.COPY, self.REPO_SCHEMA))
        env = env_without("DRIVER_VIEW_SCHEMA")
        run = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                              "import messaging_driver as d; print(d.schema_path())", HELPER_DIR],
                             capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(run.stdout.strip(), self.COPY, run.stderr)

    def _copy_driver(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        shutil.copyfile(os.path.join(HELPER_DIR, "messaging_driver.py"), os.path.join(directory, "messaging_driver.py"))

    def test_laid_out_as_in_the_repository_without_a_copy_it_uses_schemas_conformance(self):
        with tempfile.TemporaryDirectory() as root:
            here = os.path.join(root, "drivers", "python")
            self._copy_driver(here)
            os.makedirs(os.path.join(root, "schemas", "conformance"))
            with open(os.path.join(root, "schemas", "conformance", "driver-view.schema.json"), "w") as f:
                json.dump({"type": "object", "required": ["only_here"]}, f)
            run = subprocess.run([sys.executable, "-c", "import sys, json; sys.path.insert(0, sys.argv[1]); "
                                  "import messaging_driver as d; print(json.dumps([d.schema_path(), d.validate_view({})]))", here],
                                 capture_output=True, text=True, env=env_without("DRIVER_VIEW_SCHEMA"), timeout=30)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertEqual(json.loads(run.stdout), [os.path.join(root, "schemas", "conformance", "driver-view.schema.json"),
                                                      [': missing required property "only_here"']])

    def test_with_no_schema_anywhere_it_fails_loudly(self):
        with tempfile.TemporaryDirectory() as root:
            alone = os.path.join(root, "a", "b")
            self._copy_driver(alone)
            env = env_without("DRIVER_VIEW_SCHEMA")
            run = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                                  "import messaging_driver as d\ntry:\n d.validate_view({})\nexcept d.SchemaNotFound as e:\n print('raised', e)", alone],
                                 capture_output=True, text=True, env=env, timeout=30)
            self.assertTrue(run.stdout.startswith("raised driver-view schema not found: looked for "), run.stdout + run.stderr)
            self.assertIn(os.path.join(alone, "driver-view.schema.json"), run.stdout)
            self.assertIn("DRIVER_VIEW_SCHEMA", run.stdout)
            driver = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                                     "import messaging_driver as d; d.run_driver(object(), name='x', version='1')", alone],
                                    capture_output=True, text=True, env=env, input="", timeout=30)
            self.assertEqual(driver.returncode, 1, driver.stdout + driver.stderr)
            self.assertEqual(driver.stdout, "", "no ready line")
            self.assertTrue(driver.stderr.startswith("driver: driver-view schema not found: looked for "), driver.stderr)

    @needs_binary
    def test_pip_install_into_a_fresh_venv_offline(self):
        # What works with no registry: a plain venv (Python 3.11's has setuptools 65 and pip, no
        # `wheel`), `--no-build-isolation` so pip uses that setuptools instead of fetching one,
        # and `--no-index`. setup.py builds the wheel itself when `wheel` is absent. The source
        # is copied first, because setuptools writes build/ and *.egg-info beside it.
        with tempfile.TemporaryDirectory() as d:
            source = os.path.join(d, "src")
            shutil.copytree(HELPER_DIR, source, ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
            venv = os.path.join(d, "venv")
            made = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True, text=True, timeout=120)
            self.assertEqual(made.returncode, 0, made.stderr)
            python = os.path.join(venv, "bin", "python")
            install = subprocess.run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                                      "--disable-pip-version-check", "--quiet", source],
                                     capture_output=True, text=True, timeout=120,
                                     env=env_without("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PYTHONPATH"))
            self.assertEqual(install.returncode, 0, install.stdout + install.stderr)
            check = subprocess.run([python, "-c", textwrap.dedent("""
                import json, os, sys
                import messaging_driver, messaging_mock
                from importlib.metadata import entry_points
                site = os.path.dirname(messaging_driver.__file__)
                mock = messaging_mock.start_mock()
                with mock:
                    health = mock.control.health()
                print(json.dumps({
                    "site": site,
                    "mock_module": os.path.dirname(messaging_mock.__file__),
                    "fixture_module": os.path.isfile(os.path.join(site, "messaging_mock_pytest.py")),
                    "schema": messaging_driver.schema_path(),
                    "valid": messaging_driver.validate_view({"connection": "open"}),
                    "invalid": len(messaging_driver.validate_view({"connection": "sideways"})),
                    "plugin": [e.value for e in entry_points(group="pytest11") if e.name == "messaging_mock"],
                    "health": health["ok"],
                }))
            """)], capture_output=True, text=True, cwd=d, timeout=60,
                env=env_without("DRIVER_VIEW_SCHEMA", "PYTHONPATH"))
            self.assertEqual(check.returncode, 0, check.stderr)
            out = json.loads(check.stdout)
            self.assertTrue(out["site"].startswith(venv), out)
            self.assertEqual(out["mock_module"], out["site"])
            self.assertTrue(out["fixture_module"])
            self.assertEqual(out["schema"], os.path.join(out["site"], "driver-view.schema.json"), "the schema beside the installed module")
            self.assertEqual(out["valid"], [])
            self.assertEqual(out["invalid"], 1)
            self.assertEqual(out["plugin"], ["messaging_mock_pytest"])
            self.assertTrue(out["health"])


if __name__ == "__main__":
    unittest.main()
