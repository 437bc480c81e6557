"""A small asyncio client for the Messaging API, written for the Python example driver.

It follows examples/drivers/node/driver.mjs: it keeps the obligations of spec §11 that the
conformance kit checks. HTTP goes through urllib in a worker thread (asyncio.to_thread), so the
event loop never blocks; the socket is the `websockets` package's asyncio client.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

BATCH = "EVENT_TYPE_EVENT_BATCH"
SESSION_END = "EVENT_TYPE_SESSION_END"


def _tls(ca_file: str | None) -> ssl.SSLContext | None:
    """Trusts a TLS mock's CA alone (MESSAGING_CA_FILE, `run --tls`); None: the defaults."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else None


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class HttpResult:
    def __init__(self, status: int, headers: Any, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body or b"null")


def _http(opener, method: str, url: str, headers: dict, body: bytes | None) -> HttpResult:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with opener.open(request, timeout=10) as response:
            return HttpResult(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return HttpResult(error.code, error.headers, error.read())


class Client:
    def __init__(self, env: Any, streaming: bool, on_log=_log):
        self.env = env
        self.streaming = streaming
        self.log_line = on_log
        self._ssl = _tls(getattr(env, "ca_file", None))
        # No proxy (the mock is local); over TLS, the mock's CA alone.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self._ssl))
        self.seen: set[str] = set()  # event ids: dedupe (MSG-2)
        self.events: list[tuple[tuple[int, int], dict]] = []  # sorted by key (MSG-3)
        self.last_sequence = 0
        self.arrivals = 0
        self.pending: list[dict] = []  # unechoed user messages
        self.queued: list[str] = []  # frames waiting for the socket to be ready
        self.connection = "connecting"
        self.join_sent = False
        self.ended = False
        self.stopped = False
        self.ready = False
        self.failures = 0
        self.token: str | None = None
        self.session_id: str | None = None
        self.ws = None
        self.tasks: list[asyncio.Task] = []
        self.heartbeat: asyncio.Task | None = None

    # --- HTTP ---------------------------------------------------------------------------

    async def post(self, path: str, headers: dict, body: bytes) -> HttpResult:
        """POST with retries: 429 waits Retry-After; 5xx backs off 0.5 s, 1 s, 2 s (AUTH-5)."""
        delay = 0.5
        attempt = 1
        while True:
            response = await asyncio.to_thread(
                _http, self._opener, "POST", self.env.base_url + path, headers, body)
            retry = response.status == 429 or response.status >= 500
            if not retry or attempt == 5:
                return response
            if response.status == 429:
                try:
                    wait = float(response.headers.get("Retry-After") or 1)
                except ValueError:
                    wait = 1.0
            else:
                wait, delay = delay, min(delay * 2, 30)
            await asyncio.sleep(wait)
            attempt += 1

    async def new_session(self) -> None:
        json_type = {"Content-Type": "application/json"}
        token = await self.post("/api/v1/access-token", {
            **json_type, "X-Token": self.env.connector_token or "", "X-Host": self.env.host or "",
        }, b"{}")
        if not token.ok:
            raise RuntimeError(f"access-token: {token.status}")
        self.token = token.json()["access_token"]  # a fresh token for every session (AUTH-3)
        body = _dumps({"streaming_enabled": self.streaming, "platform": "custom"}).encode()
        session = await self.post("/api/v1/sessions", {
            **json_type, "Authorization": f"Bearer {self.token}",
        }, body)
        if not session.ok:
            raise RuntimeError(f"sessions: {session.status}")
        self.session_id = session.json()["session_id"]

    # --- the socket ---------------------------------------------------------------------

    def url(self, cursor: int) -> str:
        cursor_part = f"&cursor={cursor}" if cursor > 0 else ""
        return f"{self.env.ws_url}?session_id={self.session_id}&access_token={self.token}{cursor_part}"

    def capabilities(self) -> dict:
        for _, event in self.events:
            if event.get("type") == "EVENT_TYPE_SESSION_START":
                return (event.get("payload") or {}).get("capabilities") or {}
        return {}

    async def _open(self, cursor: int):
        url = self.url(cursor)
        tls = {"ssl": self._ssl} if self._ssl and url.startswith("wss:") else {}
        return await connect(url, ping_interval=None, compression=None, max_size=None,
                             proxy=None, open_timeout=10, close_timeout=2, **tls)

    async def start(self) -> None:
        await self.new_session()
        ws = await self._open(0)  # the first open must work, or `start` fails
        self._spawn(self._supervise(ws))
        self._spawn(self._ticker())

    def _spawn(self, coro) -> None:
        self.tasks.append(asyncio.create_task(coro))

    async def _supervise(self, ws) -> None:
        """Keep the conversation connected: reconnect with backoff until it ends (RC-1..RC-5)."""
        delay = 0.0
        while True:
            if ws is None:
                if delay:
                    await asyncio.sleep(delay)
                if self.stopped or self.ended:
                    self.connection = "closed"
                    return
                try:
                    ws = await self._open(self.last_sequence)  # cursor = highest sequence (RC-2)
                except (InvalidHandshake, OSError, asyncio.TimeoutError) as error:
                    self.failures += 1
                    status = error.response.status_code if isinstance(error, InvalidStatus) else None
                    if status in (401, 404):
                        # The session or its token is gone: start over with both (RC-5).
                        try:
                            await self.new_session()
                            self.reset()
                            delay = 0.0
                            continue
                        except Exception as failure:  # noqa: BLE001
                            self.log_line(f"new session failed: {failure}")
                    # Exactly max_reconnect_attempts attempts (RC-4), then the failure shows.
                    if self.failures >= self.capabilities().get("max_reconnect_attempts", 5):
                        self.connection = "closed"
                        return
                    delay = min(2.0 ** self.failures, 30.0)  # 2 s, 4 s, ... capped (RC-3)
                    continue
            self.ws = ws
            self.failures = 0
            self.connection = "open"
            await self._read(ws)
            self.ready = False
            self._stop_heartbeat()
            if self.ended or self.stopped:
                self.connection = "closed"
                return
            self.connection = "reconnecting"
            ws, delay = None, 1.0  # the first retry 1 s after the drop (RC-3)

    async def _read(self, ws) -> None:
        history = False
        try:
            async for message in ws:
                try:
                    event = json.loads(message)
                except ValueError:
                    continue  # undecodable frames are ignored (ERR-2)
                if not isinstance(event, dict):
                    continue
                inner = (event.get("payload") or {}).get("events") or [] if event.get("type") == BATCH else []
                batch_ends = any(isinstance(e, dict) and e.get("type") == SESSION_END for e in inner)
                self.ingest(event)
                if event.get("type") == BATCH and not history:
                    history = True
                    if not batch_ends:
                        await self.on_history(ws)
                if event.get("type") == SESSION_END or batch_ends:
                    self.ended = True
                    self._stop_heartbeat()
                    await ws.close(1000)  # the client closes the socket itself (UX-4)
        except ConnectionClosed:
            pass

    async def on_history(self, ws) -> None:
        interval = self.capabilities().get("heartbeat_interval_seconds", 30)
        self._stop_heartbeat()
        if interval and interval > 0:
            self.heartbeat = asyncio.create_task(self._heartbeat(ws, interval))
        joined = any(e.get("type") == "EVENT_TYPE_POLY_AGENT_JOINED" for _, e in self.events)
        if not joined and not self.join_sent:
            self.join_sent = True  # after the history, once (WS-2/3/4)
            await ws.send(_dumps({"type": "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", "payload": {}}))
        # Messages sent before a drop and not echoed in the history go again; those never sent
        # are still queued and go once.
        for p in [p for p in self.pending if p["sent"] and not p["failed"]]:
            await ws.send(p["frame"])
        while self.queued:
            await self.transmit(ws, self.queued.pop(0))
        self.ready = True

    async def _heartbeat(self, ws, interval: float) -> None:
        try:
            while True:
                await asyncio.sleep(interval)
                await ws.send(_dumps({"type": "EVENT_TYPE_HEARTBEAT", "payload": {}}))
        except ConnectionClosed:
            pass

    def _stop_heartbeat(self) -> None:
        if self.heartbeat:
            self.heartbeat.cancel()
            self.heartbeat = None

    def reset(self) -> None:
        self.seen, self.events, self.last_sequence = set(), [], 0
        self.join_sent, self.pending = False, []

    # --- events -------------------------------------------------------------------------

    def ingest(self, event: dict) -> None:
        if event.get("type") == BATCH:
            for inner in (event.get("payload") or {}).get("events") or []:
                if not isinstance(inner, dict):
                    continue
                if "payload" not in inner:
                    # Appendix A: a payload may sit under a key named after the type.
                    key = str(inner.get("type", "")).removeprefix("EVENT_TYPE_").lower()
                    inner["payload"] = inner.get(key) or {}
                self.ingest_one(inner)  # flatten (MSG-1)
            return
        self.ingest_one(event)

    def ingest_one(self, event: dict) -> None:
        event_id = event.get("id")
        if not event_id or event_id in self.seen:
            return
        self.seen.add(event_id)
        client_id = ((event.get("metadata") or {}).get("custom") or {}).get("client_event_id")
        if event.get("type") == "EVENT_TYPE_USER_MESSAGE" and client_id:
            self.pending = [p for p in self.pending if p["id"] != client_id]
        self.arrivals += 1
        sequence = event.get("sequence")
        if isinstance(sequence, int) and not isinstance(sequence, bool):
            self.last_sequence = max(self.last_sequence, sequence)
            key = (sequence, 0)
        else:
            key = (self.last_sequence, self.arrivals)
        at = next((i for i, (k, _) in enumerate(self.events) if k > key), len(self.events))
        self.events.insert(at, (key, event))

    # --- sending ------------------------------------------------------------------------

    async def send_frame(self, value: Any) -> None:
        frame = value if isinstance(value, str) else _dumps(value)
        if self.ready and self.ws is not None:
            await self.transmit(self.ws, frame)
        else:
            self.queued.append(frame)

    async def transmit(self, ws, frame: str) -> None:
        try:
            await ws.send(frame)
        except ConnectionClosed:
            self.queued.append(frame)  # goes out after the next history
            return
        pending = next((p for p in self.pending if p["frame"] == frame), None)
        if pending and not pending["sent"]:
            pending["sent"] = True
            pending["due"] = time.monotonic() + 5

    async def send(self, text: str) -> None:
        if self.ended:
            raise RuntimeError("the conversation is over")
        cid = str(uuid.uuid4())
        frame = _dumps({"type": "EVENT_TYPE_USER_MESSAGE", "payload": {"text": text},
                        "metadata": {"custom": {"client_event_id": cid}}})
        limit = self.capabilities().get("max_message_size_bytes", 131072)
        if len(frame.encode()) > limit:
            raise RuntimeError("message too large")  # WS-7
        self.pending.append({"id": cid, "text": text, "frame": frame, "resends": 0,
                             "failed": False, "sent": False, "due": time.monotonic() + 5})
        await self.send_frame(frame)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            await self.tick()

    async def tick(self) -> None:
        """Resend unechoed messages 5 s, 15 s and 30 s after they were sent; mark them failed
        5 s after the third resend (MSG-5)."""
        now = time.monotonic()
        for p in list(self.pending):
            if p["failed"] or not p["sent"] or now < p["due"]:
                continue
            if p["resends"] >= 3:
                p["failed"] = True
                continue
            p["resends"] += 1
            p["due"] = now + (5 if p["resends"] >= 3 else 5 * (p["resends"] + 1))
            await self.send_frame(p["frame"])

    # --- what the app shows -------------------------------------------------------------

    def view(self) -> dict:
        messages: list[dict] = []
        chunks: dict[Any, list[dict]] = {}
        echoed: set[str] = set()
        typing = {"agent": False, "live_agent": False}
        system_messages: list[dict] = []
        view: dict[str, Any] = {
            "connection": self.connection, "session_id": self.session_id, "agent": None,
            "live_agent": None, "handoff": "none", "queue": None, "client_handoff": None,
            "language": None, "ended": None,
        }

        def reply(m: dict, author: str) -> dict:
            return {
                "message_id": m.get("message_id"), "from": author, "text": m.get("text") or "",
                "attachments": m.get("attachments") or [],
                "suggestions": [s.get("message_text") for s in m.get("response_suggestions") or []],
                "complete": True, "status": None,
            }

        for _, e in self.events:
            p = e.get("payload") or {}
            t = e.get("type")
            if t == "EVENT_TYPE_USER_MESSAGE":
                cid = ((e.get("metadata") or {}).get("custom") or {}).get("client_event_id")
                if cid and cid in echoed:
                    continue
                if cid:
                    echoed.add(cid)
                messages.append({**reply(p, "user"), "status": "sent"})
            elif t == "EVENT_TYPE_POLY_AGENT_MESSAGE":
                typing["agent"] = False
                messages.append(reply(p, "agent"))
            elif t == "EVENT_TYPE_POLY_AGENT_LEFT":
                typing["agent"] = False
            elif t == "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK":
                typing["agent"] = False
                if p.get("message_id") not in chunks:
                    chunks[p.get("message_id")] = []
                    messages.append(reply({"message_id": p.get("message_id")}, "agent"))
                chunks[p.get("message_id")].append(p)
            elif t == "EVENT_TYPE_LIVE_AGENT_MESSAGE":
                typing["live_agent"] = False
                messages.append(reply(p, "live_agent"))
            elif t == "EVENT_TYPE_POLY_AGENT_THINKING":
                typing["agent"] = True
            elif t == "EVENT_TYPE_LIVE_AGENT_TYPING":
                typing["live_agent"] = p.get("state") != "TYPING_STATE_STOPPED"
            elif t == "EVENT_TYPE_POLY_AGENT_JOINED":
                view["agent"] = {"name": p.get("agent_name"), "avatar_url": p.get("agent_avatar_url")}
            elif t == "EVENT_TYPE_LIVE_AGENT_JOINED":
                view["live_agent"], view["handoff"] = p.get("agent"), "live"
            elif t == "EVENT_TYPE_LIVE_AGENT_LEFT":
                typing["live_agent"] = False
                view["live_agent"], view["handoff"] = None, "ended"
            elif t == "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF":
                typing["agent"] = False
                view["handoff"] = "triggered"
            elif t == "EVENT_TYPE_HANDOFF_ACCEPTED":
                view["handoff"] = "accepted"
            elif t == "EVENT_TYPE_HANDOFF_QUEUE_STATUS":
                view["queue"] = {k: p.get(k) for k in
                                 ("queue_name", "position_in_queue", "estimated_wait_seconds")}
            elif t == "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED":
                view["handoff"] = "client_required"
                view["client_handoff"] = {"reason": p.get("reason"), "queue_name": p.get("queue_name")}
            elif t == "EVENT_TYPE_HANDOFF_FAILED":
                view["handoff"] = "failed"
            elif t == "EVENT_TYPE_HANDOFF_TIMEOUT":
                view["handoff"] = "timeout"
            elif t == "EVENT_TYPE_LANGUAGE_CHANGED":
                view["language"] = p.get("language_code")
            elif t == "EVENT_TYPE_SYSTEM_MESSAGE":
                typing["agent"] = False
                system_messages.append({"level": p.get("level"), "message": p.get("message")})
            elif t == SESSION_END:
                typing["agent"] = typing["live_agent"] = False
                view["ended"] = {"reason": p.get("reason")}
            # unknown types are ignored (ERR-2)

        # Chunks in chunk_index order; complete once every chunk up to the final one is here (MSG-4).
        for m in messages:
            parts = chunks.get(m["message_id"]) if m["from"] == "agent" else None
            if parts is None:
                continue
            by_index = {c.get("chunk_index"): c for c in parts}
            ordered = []
            i = 1
            while i in by_index:
                ordered.append(by_index[i])
                i += 1
            m["text"] = "".join(c.get("text") or "" for c in ordered)
            m["attachments"] = [a for c in ordered for a in c.get("attachments") or []]
            m["suggestions"] = [s.get("message_text") for c in ordered
                                for s in c.get("response_suggestions") or []]
            m["complete"] = any(c.get("is_complete") is True for c in ordered)
        for p in self.pending:
            messages.append({"message_id": None, "from": "user", "text": p["text"], "attachments": [],
                             "suggestions": [], "complete": True,
                             "status": "failed" if p["failed"] else "sending"})
        return {**view, "typing": typing, "messages": messages, "system_messages": system_messages}

    # --- lifetime -----------------------------------------------------------------------

    def save(self, path: str) -> None:
        """What survives an app restart, kept in the working directory."""
        state = {
            "token": self.token, "session_id": self.session_id, "streaming": self.streaming,
            "events": [e for _, e in self.events], "join_sent": self.join_sent,
            "pending": [{k: v for k, v in p.items() if k != "due"} for p in self.pending],
        }
        with open(path, "w", encoding="utf-8") as f:
            json.dump(state, f)

    @classmethod
    def restore(cls, env: Any, path: str, on_log=_log) -> "Client":
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        client = cls(env, state["streaming"], on_log)
        client.token, client.session_id = state["token"], state["session_id"]
        client.join_sent = state["join_sent"]
        for event in state["events"]:
            client.ingest_one(event)
        now = time.monotonic()
        client.pending = [{**p, "due": now + 5} for p in state["pending"]]
        client.queued = [p["frame"] for p in client.pending if not p["sent"]]
        client._spawn(client._supervise(None))
        client._spawn(client._ticker())
        return client

    async def stop(self) -> None:
        self.stopped = True
        self._stop_heartbeat()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(1000), 2)
            except (asyncio.TimeoutError, ConnectionClosed, OSError):
                pass
        for task in self.tasks:
            task.cancel()
        self.connection = "closed"
