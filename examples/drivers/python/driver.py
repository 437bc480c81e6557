"""The Python example driver: the kit's commands mapped onto client.py, via the helper in
drivers/python (which speaks the driver contract). Run from anywhere:

    target/py-venv/bin/python examples/drivers/python/driver.py
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "drivers", "python"))

from client import Client  # noqa: E402
from messaging_driver import run_driver  # noqa: E402

# The working directory is the driver's to persist in (contract §1).
STATE_FILE = ".python-driver-session.json"
TYPING = {"started": "TYPING_STATE_STARTED", "stopped": "TYPING_STATE_STOPPED"}


class Adapter:
    def __init__(self):
        self.client = None

    def _client(self):
        if self.client is None:
            raise RuntimeError("no conversation")
        return self.client

    async def start(self, streaming, ctx):
        if self.client is not None:
            await self.client.stop()
        self.client = Client(ctx.env, bool(streaming))
        await self.client.start()

    async def send(self, text, ctx):
        await self._client().send(text)

    async def typing(self, state, ctx):
        if state not in TYPING:
            raise ValueError(f"unknown typing state: {state}")
        await self._client().send_frame({"type": "EVENT_TYPE_USER_TYPING", "payload": {"state": TYPING[state]}})

    async def tap_suggestion(self, message_id, index, ctx):
        messages = self._client().view()["messages"]
        message = next((m for m in messages if m["message_id"] == message_id), None)
        suggestions = message["suggestions"] if message else []
        if not isinstance(index, int) or not 0 <= index < len(suggestions):
            raise LookupError("no such suggestion")
        await self.client.send(suggestions[index])

    async def end(self, ctx):
        await self._client().send_frame({"type": "EVENT_TYPE_USER_END_SESSION", "payload": {}})

    def view(self, ctx):
        return self.client.view() if self.client else {"connection": "closed"}

    async def restart(self, ctx):
        # An app restart: the SDK instance goes, a new one resumes from what was persisted.
        client = self._client()
        client.save(STATE_FILE)
        await client.stop()
        self.client = Client.restore(ctx.env, STATE_FILE)

    async def exit(self, ctx):
        if self.client is not None:
            await self.client.stop()


if __name__ == "__main__":
    run_driver(Adapter(), name="python-example-driver", version="0.1.0")
