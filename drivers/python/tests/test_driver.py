"""Tests of messaging_driver: tiny adapter scripts run as real subprocesses.

    python3 -m unittest discover -s drivers/python/tests      (from the repo root)
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import textwrap
import threading
import unittest

HELPER_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, HELPER_DIR)

import messaging_driver  # noqa: E402
from messaging_driver import validate_view  # noqa: E402

TIMEOUT = 10

PRELUDE = f"""
import asyncio, sys
sys.path.insert(0, {HELPER_DIR!r})
from messaging_driver import run_driver, Unsupported, NotImplementedCase
"""

# An adapter exercising most paths: sync and async methods, failures, a view chosen by the test.
BASIC = PRELUDE + """
VIEWS = {
    "valid": {"connection": "open", "session_id": "s1", "agent": {"name": "Ada", "avatar_url": "u"},
              "typing": {"agent": False, "live_agent": False}, "handoff": "none",
              "messages": [{"message_id": None, "from": "user", "text": "hi", "complete": True,
                            "status": "sending", "suggestions": ["a"], "attachments": [{"x": 1}]}],
              "queue": {"queue_name": None, "position_in_queue": 3}, "language": None,
              "system_messages": [], "ended": None, "client_handoff": None, "live_agent": None},
    "bad_enum": {"connection": "sideways"},
    "missing_required": {"connection": "open", "agent": {"name": "Ada"}},
    "nested_type": {"messages": [{"from": "agent", "text": "a", "complete": True},
                                 {"from": "agent", "text": "b", "complete": "yes"}]},
    "below_minimum": {"queue": {"queue_name": "q", "position_in_queue": -2}},
    "not_object": ["open"],
}

class Adapter:
    def __init__(self):
        self.sent = []
        self.which = "valid"

    async def start(self, streaming, ctx):
        await asyncio.sleep(0.3)            # slow: later commands must still wait for it
        self.sent.append(("start", streaming))

    def send(self, text, ctx):              # sync
        if text == "boom":
            raise ValueError("boom: " + text)
        if text == "unsupported":
            raise Unsupported("no")
        if text == "not-implemented":
            raise NotImplementedCase("cannot")
        if text.startswith("view:"):
            self.which = text[5:]
        self.sent.append(("send", text))

    async def typing(self, state, ctx):     # async
        await asyncio.sleep(0)
        self.sent.append(("typing", state))

    def view(self, ctx):
        if self.which == "record":
            return {"connection": "open", "record": self.sent}
        if self.which == "env":
            e = ctx.env
            return {"env": [e.base_url, e.ws_url, e.connector_token, e.host, e.case_id]}
        return VIEWS[self.which]

run_driver(Adapter(), name="test-sdk", version="9.9")
"""


class Proc:
    """A driver subprocess with a line reader that never blocks the test forever."""

    def __init__(self, source: str, env: dict | None = None):
        self.dir = tempfile.TemporaryDirectory()
        path = os.path.join(self.dir.name, "adapter.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(source))
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("DRIVER_STRICT_VIEW", "DRIVER_VIEW_SCHEMA")}
        full_env.update(env or {})
        self.p = subprocess.Popen([sys.executable, path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  cwd=self.dir.name, env=full_env, text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, *commands):
        for c in commands:
            self.p.stdin.write((c if isinstance(c, str) else json.dumps(c)) + "\n")
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def read(self, timeout=TIMEOUT):
        line = self.lines.get(timeout=timeout)
        if line is None:
            raise EOFError("driver stdout closed")
        return json.loads(line)

    def read_reply(self, timeout=TIMEOUT):
        """The next non-log line; logs go to self.logs."""
        while True:
            msg = self.read(timeout)
            if "log" in msg:
                self.logs.append(msg["log"])
                continue
            return msg

    def rest(self):
        """Every remaining line after stdout closes."""
        out = []
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            if line is None:
                return out
            out.append(json.loads(line))

    def wait(self):
        try:
            return self.p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise AssertionError("driver did not exit in time")

    logs: list

    def __enter__(self):
        self.logs = []
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for stream in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                stream.close()
            except Exception:
                pass
        self.dir.cleanup()


def run_all(source, commands, env=None):
    """Send every command, close stdin; return (ready, replies, logs, returncode)."""
    with Proc(source, env) as d:
        ready = d.read()
        d.send(*commands)
        d.close_stdin()
        lines = d.rest()
        code = d.wait()
    replies = [m for m in lines if "log" not in m]
    logs = [m["log"] for m in lines if "log" in m]
    return ready, replies, logs, code


class ContractTests(unittest.TestCase):
    def test_ready_line_first(self):
        with Proc(BASIC) as d:
            first = d.read()
            self.assertEqual(first, {"ready": True, "name": "test-sdk", "version": "9.9"})
        # Still first when the helper has something to log at start (a missing schema).
        with Proc(BASIC, {"DRIVER_VIEW_SCHEMA": "/nonexistent/schema.json"}) as d:
            self.assertEqual(d.read(), {"ready": True, "name": "test-sdk", "version": "9.9"})
            self.assertIn("not found", d.read()["log"])

    def test_replies_in_order_with_re(self):
        # `start` is slow and async; the sync `send` after it must not overtake it.
        _, replies, _, code = run_all(BASIC, [
            {"id": 5, "cmd": "start", "streaming": True},
            {"id": 3, "cmd": "send", "text": "a"},
            {"id": 9, "cmd": "typing", "state": "started"},
            {"id": 4, "cmd": "send", "text": "view:record"},
            {"id": 8, "cmd": "view"},
        ])
        self.assertEqual([r["re"] for r in replies], [5, 3, 9, 4, 8])
        self.assertTrue(all(r.get("ok") is True for r in replies), replies)
        self.assertEqual(replies[-1]["view"]["record"],
                         [["start", True], ["send", "a"], ["typing", "started"], ["send", "view:record"]])
        self.assertEqual(code, 0)

    def test_unsupported(self):
        _, replies, _, _ = run_all(BASIC, [
            {"id": 1, "cmd": "end"},                        # method missing
            {"id": 2, "cmd": "send", "text": "unsupported"},  # raises Unsupported
            {"id": 3, "cmd": "dance"},                      # unknown command
            {"id": 4, "cmd": "tap_suggestion", "message_id": "m", "index": 0},
        ])
        self.assertEqual(replies, [{"re": i, "unsupported": True} for i in (1, 2, 3, 4)])

    def test_exception_is_ok_false(self):
        _, replies, _, code = run_all(BASIC, [
            {"id": 1, "cmd": "send", "text": "boom"},
            {"id": 2, "cmd": "send", "text": "fine"},
        ])
        self.assertEqual(replies[0], {"re": 1, "ok": False, "error": "boom: boom"})
        self.assertEqual(replies[1], {"re": 2, "ok": True})
        self.assertEqual(code, 0)

    def test_sync_and_async_methods(self):
        _, replies, _, _ = run_all(BASIC, [
            {"id": 1, "cmd": "typing", "state": "stopped"},   # async def
            {"id": 2, "cmd": "send", "text": "view:record"},  # plain def
            {"id": 3, "cmd": "view"},
        ])
        self.assertEqual(replies[2]["view"]["record"], [["typing", "stopped"], ["send", "view:record"]])

    def test_unparsable_line_is_logged_and_ignored(self):
        _, replies, logs, code = run_all(BASIC, ["this is not json", "[1,2]", {"id": 7, "cmd": "send", "text": "x"}])
        self.assertEqual(replies, [{"re": 7, "ok": True}])
        self.assertEqual(len([x for x in logs if "not a command" in x]), 2, logs)
        self.assertEqual(code, 0)

    def test_exit_replies_then_exits_0_with_stdin_open(self):
        with Proc(BASIC) as d:
            d.read()
            d.send({"id": 1, "cmd": "exit"}, {"id": 2, "cmd": "send", "text": "after"})
            self.assertEqual(d.read_reply(), {"re": 1, "ok": True})
            self.assertEqual(d.wait(), 0)      # stdin is still open here
            self.assertEqual([m for m in d.rest() if "log" not in m], [])  # nothing after exit

    def test_eof_exits_0(self):
        _, replies, _, code = run_all(BASIC, [{"id": 1, "cmd": "send", "text": "x"}])
        self.assertEqual(replies, [{"re": 1, "ok": True}])
        self.assertEqual(code, 0)

    def test_not_implemented_case_exits_89(self):
        _, replies, _, code = run_all(BASIC, [
            {"id": 1, "cmd": "send", "text": "x"},
            {"id": 2, "cmd": "send", "text": "not-implemented"},
            {"id": 3, "cmd": "send", "text": "never"},
        ])
        self.assertEqual(code, 89)
        self.assertEqual([r["re"] for r in replies], [1])

    def test_event_loop_runs_while_waiting_for_stdin(self):
        # A background task must be able to log while no command is in flight.
        source = PRELUDE + textwrap.dedent("""
        class A:
            async def start(self, streaming, ctx):
                async def later():
                    await asyncio.sleep(0.2)
                    ctx.log("background tick")
                asyncio.get_running_loop().create_task(later())
        run_driver(A(), name="bg", version="1")
        """)
        with Proc(source) as d:
            d.read()
            d.send({"id": 1, "cmd": "start", "streaming": False})
            self.assertEqual(d.read(), {"re": 1, "ok": True})
            self.assertEqual(d.read(timeout=5), {"log": "background tick"})  # stdin still open

    def test_env_on_context(self):
        _, replies, _, _ = run_all(BASIC, [
            {"id": 1, "cmd": "send", "text": "view:env"}, {"id": 2, "cmd": "view"},
        ], env={"MESSAGING_BASE_URL": "https://mock.test:8443", "MESSAGING_CONNECTOR_TOKEN": "ct",
                "MESSAGING_HOST": "h", "CONFORMANCE_CASE": "case-1"})
        self.assertEqual(replies[1]["view"]["env"],
                         ["https://mock.test:8443", "wss://mock.test:8443/ws", "ct", "h", "case-1"])

    def test_ws_url_derivation(self):
        self.assertEqual(messaging_driver.ws_url_from("http://127.0.0.1:4000"), "ws://127.0.0.1:4000/ws")
        self.assertEqual(messaging_driver.ws_url_from("https://a.b/api"), "wss://a.b/ws")
        self.assertIsNone(messaging_driver.ws_url_from(None))

    def test_env_carries_the_ca_file_of_a_tls_run(self):
        tls = messaging_driver.Env.from_environ(
            {"MESSAGING_BASE_URL": "https://127.0.0.1:9/", "MESSAGING_CA_FILE": "/tmp/ca.pem"})
        self.assertEqual((tls.ws_url, tls.ca_file), ("wss://127.0.0.1:9/ws", "/tmp/ca.pem"))
        plain = messaging_driver.Env.from_environ({"MESSAGING_BASE_URL": "http://127.0.0.1:9"})
        self.assertIsNone(plain.ca_file)


class ViewValidationTests(unittest.TestCase):
    def view_of(self, which, env=None):
        _, replies, logs, code = run_all(BASIC, [
            {"id": 1, "cmd": "send", "text": f"view:{which}"}, {"id": 2, "cmd": "view"},
        ], env)
        self.assertEqual(code, 0)
        return replies[1], [x for x in logs if "driver-view schema" in x]

    def test_valid_view_passes(self):
        reply, logs = self.view_of("valid")
        self.assertEqual(logs, [])
        self.assertTrue(reply["ok"])
        self.assertEqual(reply["view"]["connection"], "open")
        self.assertEqual(validate_view(reply["view"]), [])

    def test_wrong_enum(self):
        reply, logs = self.view_of("bad_enum")
        self.assertEqual(len(logs), 1, logs)
        self.assertTrue(logs[0].startswith("view does not match driver-view schema: /connection: "), logs)
        self.assertIn('"sideways"', logs[0])
        self.assertEqual(reply["view"], {"connection": "sideways"})  # replied anyway
        self.assertTrue(reply["ok"])

    def test_missing_required(self):
        _, logs = self.view_of("missing_required")
        self.assertEqual(logs, ['view does not match driver-view schema: /agent: missing required property "avatar_url"'])

    def test_nested_wrong_type(self):
        _, logs = self.view_of("nested_type")
        self.assertEqual(len(logs), 1, logs)
        self.assertTrue(logs[0].startswith("view does not match driver-view schema: /messages/1/complete: expected boolean"), logs)

    def test_negative_control_below_minimum(self):
        # Broken in a way none of the cases above is: a number under the schema's minimum.
        _, logs = self.view_of("below_minimum")
        self.assertEqual(len(logs), 1, logs)
        self.assertIn("/queue/position_in_queue: ", logs[0])
        self.assertIn("minimum", logs[0])

    def test_strict_mode_fails_the_reply(self):
        reply, logs = self.view_of("bad_enum", env={"DRIVER_STRICT_VIEW": "1"})
        self.assertEqual(reply["ok"], False)
        self.assertNotIn("view", reply)
        self.assertTrue(reply["error"].startswith("view does not match driver-view schema: /connection: "))
        self.assertEqual(len(logs), 1)

    def test_strict_mode_valid_view_still_ok(self):
        reply, logs = self.view_of("valid", env={"DRIVER_STRICT_VIEW": "1"})
        self.assertTrue(reply["ok"])
        self.assertEqual(logs, [])

    def test_missing_schema_file_logs_once_and_skips_validation(self):
        reply, logs = self.view_of("bad_enum", env={"DRIVER_VIEW_SCHEMA": "/nonexistent/schema.json",
                                                    "DRIVER_STRICT_VIEW": "1"})
        self.assertTrue(reply["ok"])
        self.assertEqual(len(logs), 1, logs)
        self.assertIn("not found", logs[0])

    def test_schema_override(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.json")
            with open(path, "w") as f:
                json.dump({"type": "object", "required": ["must_have"]}, f)
            reply, logs = self.view_of("valid", env={"DRIVER_VIEW_SCHEMA": path})
        self.assertEqual(logs, ['view does not match driver-view schema: : missing required property "must_have"'])
        self.assertTrue(reply["ok"])

    # validate_view in-process

    def test_validate_view_pointers(self):
        problems = validate_view({
            "connection": "open",
            "typing": {"agent": "no", "live_agent": False},
            "messages": [{"from": "bot", "text": "t", "complete": True, "suggestions": [1]}],
            "handoff": "maybe",
        })
        pointers = sorted(p.split(": ")[0] for p in problems)
        self.assertEqual(pointers, ["/handoff", "/messages/0/from", "/messages/0/suggestions/0", "/typing/agent"])

    def test_validate_view_not_an_object(self):
        self.assertEqual(validate_view(["open"]), [": expected object, got array [\"open\"]"])

    def test_validate_view_types(self):
        self.assertEqual(validate_view({"queue": {"position_in_queue": 1.5}})[0].split(": ")[0],
                         "/queue/position_in_queue")
        self.assertEqual(validate_view({"queue": {"position_in_queue": True}})[0].split(": ")[0],
                         "/queue/position_in_queue")
        self.assertEqual(validate_view({"session_id": None, "ended": {"reason": "R"}, "messages": None}), [])

    def test_validator_knows_every_keyword_of_the_schema(self):
        schema = messaging_driver.load_schema()
        self.assertIsNotNone(schema, "schemas/conformance/driver-view.schema.json not found")
        self.assertEqual(messaging_driver.unknown_keywords(schema), set())
        self.assertEqual(messaging_driver.unknown_keywords({"type": "object", "additionalProperties": False}),
                         {"additionalProperties"})


if __name__ == "__main__":
    unittest.main()
