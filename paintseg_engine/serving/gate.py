"""The door in front of LitServe's queue, as an ASGI middleware: what can be refused before a
request is queued is refused here, with a JSON ``{"detail": ...}`` like every other refusal.

- 401 without the API key (when one is set), on every path but the health check;
- 503 when ``max_pending`` requests are already accepted (queued or being segmented);
- 413 for a body over ``max_body_bytes`` (from Content-Length, or counted as it arrives);
- 400 for a body that is neither a form nor well-formed JSON (LitServe would answer 500).
"""
from __future__ import annotations

import hmac
import json

FORM_TYPES = (b"multipart/form-data", b"application/x-www-form-urlencoded")


async def answer(send, status: int, detail: str, headers: tuple = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class Gate:
    def __init__(self, app, *, api_path: str, health_path: str, max_pending: int, max_body_bytes: int,
                 api_key: str | None):
        self.app, self.api_path, self.health_path = app, api_path, health_path
        self.max_pending, self.max_body_bytes, self.api_key = max_pending, max_body_bytes, api_key
        self.pending = 0  # one API-server process (commands/serve.py), one event loop: a plain count

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.api_key and scope["path"] != self.health_path:
            given = headers.get(b"x-api-key", b"")
            if not hmac.compare_digest(given, self.api_key.encode()):
                return await answer(send, 401, "a valid X-API-Key header is required")
        if scope["path"] != self.api_path or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        if self.pending >= self.max_pending:
            return await answer(send, 503, f"the server is at its limit of {self.max_pending} pending requests; "
                                "retry later", headers=((b"retry-after", b"1"),))
        self.pending += 1
        try:
            body = await self.read_body(headers, receive, send)
            if body is not None:
                await self.app(scope, replay(body, receive), send)
        finally:
            self.pending -= 1

    async def read_body(self, headers: dict, receive, send) -> bytes | None:
        """The whole body, or None once a refusal has been sent."""
        too_large = f"the body is larger than max_body_bytes={self.max_body_bytes}"
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await answer(send, 413, too_large)
            return None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk, more = message.get("body", b""), message.get("more_body", False)
            size += len(chunk)
            if size > self.max_body_bytes:
                await answer(send, 413, too_large)
                return None
            chunks.append(chunk)
        body = b"".join(chunks)
        if not headers.get(b"content-type", b"").startswith(FORM_TYPES):
            try:
                json.loads(body)
            except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
                await answer(send, 400, f"the body is not valid JSON ({error})")
                return None
        return body


def replay(body: bytes, receive):
    """A receive that gives the app the body read already, then waits on the client as before."""
    sent = False

    async def receive_again():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return receive_again
