"""Helper for writing conformance drivers in Python (standard library only, Python 3.11+).

It implements the driver contract (docs/driver-contract.md): the ready line, NDJSON
framing on stdin/stdout, one reply per command in order, unsupported/failed replies, exit
statuses, and a check of every `view` against schemas/conformance/driver-view.schema.json.
An SDK author only writes an adapter object:

    from messaging_driver import run_driver, Unsupported, NotImplementedCase

    class Adapter:
        async def start(self, streaming, ctx): ...
        def view(self, ctx): return {"connection": "open"}

    run_driver(Adapter(), name="my-sdk", version="1.0")

Every adapter method is optional and may be a plain function or a coroutine function; the
helper runs them all on one asyncio event loop it owns.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable

__all__ = [
    "run_driver",
    "Unsupported",
    "NotImplementedCase",
    "Context",
    "Env",
    "validate_view",
    "SchemaNotFound",
    "EXIT_OK",
    "EXIT_NOT_IMPLEMENTED",
]

EXIT_OK = 0
EXIT_NOT_IMPLEMENTED = 89

_HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_FILE = "driver-view.schema.json"
# Where the view schema is looked for, in order: next to this module (the copy the package
# installs; drivers/python/driver-view.schema.json in the repository), then the repository's
# schemas/conformance/ relative to this module.
SCHEMA_CANDIDATES = (
    os.path.join(_HERE, SCHEMA_FILE),
    os.path.normpath(os.path.join(_HERE, "..", "..", "schemas", "conformance", SCHEMA_FILE)),
)
# The repository's file (kept for callers of earlier versions).
DEFAULT_SCHEMA_PATH = SCHEMA_CANDIDATES[1]


class SchemaNotFound(Exception):
    """No view schema in the places looked at: views would otherwise go unchecked."""


class Unsupported(Exception):
    """Raise from an adapter method: this SDK does not support the command."""


class NotImplementedCase(Exception):
    """Raise from an adapter method: this SDK cannot run this case at all (exit 89)."""


# --- environment and context ----------------------------------------------------------------


def ws_url_from(base_url: str | None) -> str | None:
    """The WebSocket URL as a real SDK derives it: http->ws, https->wss, path /ws."""
    if not base_url:
        return None
    if base_url.startswith("https://"):
        rest, scheme = base_url[len("https://"):], "wss://"
    elif base_url.startswith("http://"):
        rest, scheme = base_url[len("http://"):], "ws://"
    else:
        return None
    authority = rest.split("/", 1)[0]
    return f"{scheme}{authority}/ws"


@dataclass(frozen=True)
class Env:
    base_url: str | None
    ws_url: str | None
    connector_token: str | None
    host: str | None
    case_id: str | None
    # MESSAGING_CA_FILE: the PEM CA of a TLS mock (`run --tls`); None otherwise.
    ca_file: str | None = None

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> "Env":
        e = os.environ if environ is None else environ
        base = e.get("MESSAGING_BASE_URL")
        if base:
            base = base.rstrip("/")
        return cls(
            base_url=base,
            ws_url=ws_url_from(base),
            connector_token=e.get("MESSAGING_CONNECTOR_TOKEN"),
            host=e.get("MESSAGING_HOST"),
            case_id=e.get("CONFORMANCE_CASE"),
            ca_file=e.get("MESSAGING_CA_FILE"),
        )


class Context:
    """Passed to every adapter method: `.env` and `.log(text)`."""

    def __init__(self, env: Env, write: Callable[[dict], None]):
        self.env = env
        self._write = write

    def log(self, text: Any) -> None:
        self._write({"log": str(text)})


# --- the view schema check ------------------------------------------------------------------
#
# A small validator for exactly the JSON Schema keywords driver-view.schema.json uses: type
# (string or list), enum, properties, required, items (schema or boolean), anyOf, $ref (local
# "#/$defs/..."), minimum. Annotations (title, description, default, format, $id, $schema) are
# ignored. Keywords it does not know are not checked; the driver says so in one log line at
# start (see unknown_keywords), so a schema that grows is never checked silently half-way.

_KNOWN_KEYWORDS = {
    "type", "enum", "properties", "required", "items", "anyOf", "$ref", "minimum",
    "$defs", "$id", "$schema", "title", "description", "default", "format",
}

_schema_cache: dict[str, Any] = {}
_MISSING = object()


def _pointer_escape(token: str) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _type_matches(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    return False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _resolve_ref(root: dict, ref: str) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"unsupported $ref {ref!r}")
    node: Any = root
    for part in ref[1:].split("/")[1:] if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[part]
    return node


def _validate(value: Any, schema: Any, root: dict, pointer: str, out: list[str]) -> None:
    if schema is True or schema == {}:
        return
    if schema is False:
        out.append(f"{pointer}: no value is allowed here")
        return
    if not isinstance(schema, dict):
        return
    where = pointer
    if "$ref" in schema:
        _validate(value, _resolve_ref(root, schema["$ref"]), root, pointer, out)
    if "anyOf" in schema:
        branches = schema["anyOf"]
        results = []
        for branch in branches:
            problems: list[str] = []
            _validate(value, branch, root, pointer, problems)
            if not problems:
                break
            results.append(problems)
        else:
            # Report the problems of the branch that got furthest: the one that is not a bare
            # type mismatch at this very pointer, if there is one.
            deepest = [p for p in results if not all(x.startswith(where + ": expected ") for x in p)]
            if deepest:
                out.extend(deepest[0])
            else:
                allowed = []
                for branch in branches:
                    allowed.extend(_describe(branch, root))
                out.append(f"{where}: expected {' or '.join(dict.fromkeys(allowed))}, got {_describe_value(value)}")
            return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_matches(value, t) for t in types):
            out.append(f"{where}: expected {' or '.join(types)}, got {_describe_value(value)}")
            return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(v) for v in schema["enum"])
        out.append(f"{where}: expected one of {allowed}, got {json.dumps(value)}")
    if "minimum" in schema and _type_matches(value, "number") and value < schema["minimum"]:
        out.append(f"{where}: {value} is less than the minimum {schema['minimum']}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{where}: missing required property {json.dumps(name)}")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _validate(value[name], sub, root, f"{pointer}/{_pointer_escape(name)}", out)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _validate(item, schema["items"], root, f"{pointer}/{i}", out)


def _describe(schema: Any, root: dict) -> list[str]:
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _describe(_resolve_ref(root, schema["$ref"]), root)
        if "enum" in schema:
            return ["one of " + ", ".join(json.dumps(v) for v in schema["enum"])]
        if "type" in schema:
            t = schema["type"]
            return list(t) if isinstance(t, list) else [t]
    return ["a valid value"]


def _describe_value(value: Any) -> str:
    text = json.dumps(value, default=str)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{_json_type(value)} {text}"


def unknown_keywords(schema: Any) -> set[str]:
    """Keywords anywhere in `schema` that this validator does not check."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        found.update(k for k in node if k not in _KNOWN_KEYWORDS)
        for sub in list(node.get("properties", {}).values()) + list(node.get("$defs", {}).values()):
            walk(sub)
        for sub in node.get("anyOf", []):
            walk(sub)
        walk(node.get("items"))

    walk(schema)
    return found


def schema_path() -> str:
    """DRIVER_VIEW_SCHEMA when set, else the first of SCHEMA_CANDIDATES that exists.

    Raises SchemaNotFound, naming the paths tried, when none does.
    """
    override = os.environ.get("DRIVER_VIEW_SCHEMA")
    if override:
        return override
    for candidate in SCHEMA_CANDIDATES:
        if os.path.isfile(candidate):
            return candidate
    raise SchemaNotFound(
        f"driver-view schema not found: looked for {' and '.join(SCHEMA_CANDIDATES)}; views cannot be "
        "validated. Reinstall the package, or set DRIVER_VIEW_SCHEMA to the absolute path of "
        "driver-view.schema.json"
    )


def load_schema(path: str | None = None) -> Any:
    """The view schema, or None when the file given (or named by DRIVER_VIEW_SCHEMA) is missing
    (then no validation happens). Without either, and with no schema in SCHEMA_CANDIDATES,
    raises SchemaNotFound."""
    path = path or schema_path()
    if path not in _schema_cache:
        try:
            with open(path, encoding="utf-8") as f:
                _schema_cache[path] = json.load(f)
        except FileNotFoundError:
            _schema_cache[path] = None
    return _schema_cache[path]


def validate_view(view: Any, schema: Any = _MISSING) -> list[str]:
    """Problems of `view` against the driver-view schema, each "<json pointer>: <problem>".

    An empty list means the view is valid, or that the schema file DRIVER_VIEW_SCHEMA names is
    missing. With no schema found at all, raises SchemaNotFound.
    """
    if schema is _MISSING:
        schema = load_schema()
    if schema is None:
        return []
    out: list[str] = []
    _validate(view, schema, schema, "", out)
    return out


# --- the contract loop ----------------------------------------------------------------------

# cmd -> the adapter method's positional arguments (ctx is always appended).
_COMMANDS: dict[str, Callable[[dict], tuple]] = {
    "start": lambda c: (bool(c.get("streaming", False)),),
    "send": lambda c: (c.get("text"),),
    "typing": lambda c: (c.get("state"),),
    "tap_suggestion": lambda c: (c.get("message_id"), c.get("index")),
    "end": lambda c: (),
    "view": lambda c: (),
    "restart": lambda c: (),
    "exit": lambda c: (),
}


class _Driver:
    def __init__(self, adapter: Any, name: str, version: str):
        self.adapter = adapter
        self.name = name
        self.version = version
        self._lock = threading.Lock()
        self.ctx = Context(Env.from_environ(), self.write)
        self.strict = os.environ.get("DRIVER_STRICT_VIEW") == "1"

    def write(self, value: dict) -> None:
        line = json.dumps(value, ensure_ascii=False, default=str)
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def log(self, text: str) -> None:
        self.write({"log": text})

    async def _call(self, method: Callable, *args: Any) -> Any:
        result = method(*args, self.ctx)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def handle(self, command: dict) -> dict | None:
        """The reply to one command, or None when nothing is to be sent."""
        cid = command.get("id")
        cmd = command.get("cmd")
        if cmd not in _COMMANDS:
            return {"re": cid, "unsupported": True}
        method = getattr(self.adapter, cmd, None)
        if method is None or not callable(method):
            if cmd == "exit":
                return {"re": cid, "ok": True}
            return {"re": cid, "unsupported": True}
        args = _COMMANDS[cmd](command)
        try:
            result = await self._call(method, *args)
        except NotImplementedCase:
            raise
        except Unsupported:
            return {"re": cid, "unsupported": True}
        except Exception as error:  # noqa: BLE001 - every other failure is the app's error
            text = str(error) or type(error).__name__
            return {"re": cid, "ok": False, "error": text}
        reply: dict = {"re": cid, "ok": True}
        if cmd == "view":
            view = result if result is not None else {}
            problems = validate_view(view)
            if problems:
                message = f"view does not match driver-view schema: {problems[0]}"
                if len(problems) > 1:
                    message += f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})"
                self.log(message)
                if self.strict:
                    return {"re": cid, "ok": False, "error": message}
            reply["view"] = view
        elif isinstance(result, dict):
            # Additive, command-specific fields an adapter wants to return.
            for key, val in result.items():
                reply.setdefault(key, val)
        return reply

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def reader() -> None:
            try:
                for raw in sys.stdin.buffer:
                    loop.call_soon_threadsafe(queue.put_nowait, raw.decode("utf-8", "replace"))
            except Exception:  # noqa: BLE001
                pass
            finally:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, None)
                except RuntimeError:
                    pass  # the loop is already closed

        # Before the ready line: without a schema no view could be checked, so the driver does
        # not start (exit 1, the reason on stderr) rather than run unchecked.
        try:
            schema = load_schema()
        except SchemaNotFound as error:
            print(f"driver: {error}", file=sys.stderr, flush=True)
            return 1
        self.write({"ready": True, "name": self.name, "version": self.version})
        if schema is None:
            self.log(f"driver-view schema not found at {schema_path()}: views are not validated")
        elif unknown_keywords(schema):
            self.log(f"driver-view schema uses keywords this helper does not check: "
                     f"{', '.join(sorted(unknown_keywords(schema)))}")
        threading.Thread(target=reader, name="stdin-reader", daemon=True).start()

        while True:
            line = await queue.get()
            if line is None:
                return EXIT_OK
            if not line.strip():
                continue
            try:
                command = json.loads(line)
                if not isinstance(command, dict):
                    raise ValueError("not an object")
            except ValueError:
                self.log(f"not a command, ignored: {line.strip()[:200]}")
                continue
            if "id" not in command:
                self.log(f"command without an id, ignored: {line.strip()[:200]}")
                continue
            try:
                reply = await self.handle(command)
            except NotImplementedCase as error:
                if str(error):
                    print(f"not implemented: {error}", file=sys.stderr, flush=True)
                return EXIT_NOT_IMPLEMENTED
            if reply is not None:
                self.write(reply)
            if command.get("cmd") == "exit":
                return EXIT_OK


def run_driver(adapter: Any, name: str = "python-driver", version: str = "0.0.0") -> None:
    """Run the driver contract with `adapter` until `exit` or stdin EOF; exits the process.

    Exit status 0 after `exit` or EOF, 89 when an adapter method raises NotImplementedCase.
    """
    driver = _Driver(adapter, name, version)
    status = EXIT_OK
    try:
        status = asyncio.run(_run_and_cancel(driver))
    except KeyboardInterrupt:
        status = 130
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: the stdin reader thread may still be blocked in read(); do not wait for it.
    os._exit(status)


async def _run_and_cancel(driver: _Driver) -> int:
    try:
        return await driver.main()
    finally:
        # Give the adapter's background tasks a bounded moment to finish closing sockets.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
