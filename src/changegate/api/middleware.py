"""Pure ASGI middleware: request ids, and a hard limit on request body size."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from changegate.api import problems
from changegate.errors import PayloadTooLarge, Problem

REQUEST_ID_HEADER = "X-Request-Id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is safe to log and store, else a fresh uuid4 hex."""
    if value and _VALID_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


class RequestId:
    """Give each request an id (`X-Request-Id`, or a new one), stored and echoed back.

    The id lands in `request.state.request_id`, in every audit event the request writes, and
    in the response's `X-Request-Id` header, errors included.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Attach the request id to the scope and to the response headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope).get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class _BodyTooLarge(Exception):
    """Raised into the app when the streamed body passes the limit."""


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413 problem+json.

    A declared Content-Length over the limit is refused before anything is read. A body sent
    without one (chunked) is counted as it streams; once it passes the limit the app's read
    fails, whatever response the app then makes is dropped and the 413 is sent instead.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, scope: Scope) -> problems.ProblemResponse:
        error = PayloadTooLarge(
            [
                Problem(
                    f"the request body is larger than the limit of {self.max_bytes} bytes",
                    field="body",
                )
            ]
        )
        return problems.from_error(
            error, str(scope.get("path", "")), headers={"Connection": "close"}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the bytes as the app reads them."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = False  # the server rejects a malformed length itself
            if too_large:
                await self._too_large(scope)(scope, receive, send)
                return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a truncated body; ours follows
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._too_large(scope)(scope, receive, send)
