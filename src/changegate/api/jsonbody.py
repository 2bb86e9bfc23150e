"""JSON request bodies, parsed strictly: UTF-8 text, no repeated keys, no unpaired surrogates.

Python's json module keeps the last of `{"title": "a", "title": "b"}` and silently drops the
first, while the CLI refuses a change file that repeats a key. So every route of
`StrictJSONRoute` has its JSON body read by `loads` before FastAPI looks at it, and a body that
repeats a key at any depth is refused (422) naming the key as an HTTP field, `body.title` or
`body.targets.tenants`, with the message "duplicate key". FastAPI is then handed that very
parse, so the body is parsed once.

`loads` also refuses what would otherwise fail later, or as a 500: bytes that are not UTF-8
(RFC 8259 JSON is UTF-8; a UTF-8 byte order mark is ignored), `\\ud800`-style escapes of
unpaired surrogates (no UTF-8 text can hold them, so neither the database nor a problem
document naming the field could), `NaN`/`Infinity` (not JSON), numbers longer than Python
converts, and nesting deeper than the parser can follow.
"""

from __future__ import annotations

import codecs
import email.message
import json
import re
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from changegate.api import problems
from changegate.domain import validation
from changegate.errors import InvalidInput, Problem

BODY = "body"
DUPLICATE_KEY = "duplicate key"
SURROGATE_MESSAGE = "unpaired UTF-16 surrogates (\\ud800-\\udfff) are not allowed in text"
# Problems kept per body; past these, one saying how many more there were.
MAX_PROBLEMS = 100

# A JSON escape of a surrogate. Valid pairs match too (they are decoded into one character),
# and so does an escaped backslash before "ud800"; a hit only means "look at the strings".
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Repeated(dict[str, Any]):
    """A JSON object that wrote some keys more than once (each keeps its last value)."""

    __slots__ = ("repeated",)

    def __init__(self, pairs: list[tuple[str, Any]], repeated: list[str]) -> None:
        super().__init__(pairs)
        self.repeated = repeated


def _repeated_keys(pairs: list[tuple[str, Any]]) -> list[str]:
    """The keys written more than once, in the order they were first repeated."""
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for key, _ in pairs:
        if key in seen:
            repeated[key] = None
        else:
            seen.add(key)
    return list(repeated)


def _text(raw: bytes) -> str:
    """The body as text: strict UTF-8, a leading byte order mark dropped."""
    skipped = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[skipped:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skipped + exc.start
        message = f"not valid UTF-8: byte 0x{raw[offset]:02x} at offset {offset}"
        raise InvalidInput([Problem(message, field=BODY)]) from None


def _not_json(name: str) -> Any:
    raise InvalidInput([problems.invalid_json(f"{name} is not a JSON value")])


def _shown(step: str | int) -> str | int:
    """A key as it can be named in a problem: NUL as `\\0`, a lone surrogate escaped."""
    if isinstance(step, int):
        return step
    return step.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")


# A path as a chain of (parent, step) links: constant work per step while walking.
_Link = tuple[Any, str | int] | None


def _field(link: _Link) -> str:
    steps: list[str | int] = []
    while link is not None:
        link, step = link
        steps.append(_shown(step))
    return validation.field_path((BODY, *reversed(steps)))


def _walk(data: Any, *, surrogates: bool) -> list[Problem]:
    """Repeated keys (and, when asked, unpaired surrogates) in document order, iteratively."""
    found: list[Problem] = []
    stack: list[tuple[_Link, Any, bool]] = [(None, data, False)]
    while stack:
        link, value, is_key = stack.pop()
        if isinstance(value, str):
            if surrogates and _SURROGATE.search(value):
                message = SURROGATE_MESSAGE + (" (in a key)" if is_key else "")
                found.append(Problem(message, field=_field(link)))
        elif isinstance(value, dict):
            if isinstance(value, _Repeated):
                found += [Problem(DUPLICATE_KEY, field=_field((link, k))) for k in value.repeated]
            for key, item in reversed(value.items()):
                stack.append(((link, key), item, False))
                stack.append(((link, key), key, True))
        elif isinstance(value, list):
            for index in range(len(value) - 1, -1, -1):
                stack.append(((link, index), value[index], False))
    return found


def loads(raw: bytes) -> Any:
    """Parse a JSON body strictly; InvalidInput names the HTTP field of every problem.

    Linear in the body's size: objects that repeat no key cost one length comparison more
    than json.loads, and the parsed data is walked only when something was repeated or the
    text escapes a surrogate.
    """
    text = _text(raw)
    repeated = False

    def make_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        result = dict(pairs)
        if len(result) == len(pairs):
            return result
        repeated = True
        return _Repeated(pairs, _repeated_keys(pairs))

    try:
        data = json.loads(text, object_pairs_hook=make_object, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise InvalidInput([problems.invalid_json(exc.msg, exc.pos)]) from None
    except RecursionError:
        raise InvalidInput([problems.invalid_json("nested too deeply")]) from None
    except ValueError:
        # json's only other ValueError: an integer longer than Python converts.
        limit = sys.get_int_max_str_digits()
        raise InvalidInput(
            [problems.invalid_json(f"a number has more than {limit} digits")]
        ) from None
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    if repeated or surrogates:
        found = _walk(data, surrogates=surrogates)
        if found:
            if len(found) > MAX_PROBLEMS:
                more = Problem(f"... and {len(found) - MAX_PROBLEMS} more problems", field=BODY)
                found = [*found[:MAX_PROBLEMS], more]
            raise InvalidInput(found)
    return data


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI would read a body of this media type as JSON (or might: none given)."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


_UNREAD = object()


class StrictJSONRequest(Request):
    """A request whose `json()` is `loads`: the one parse FastAPI gets."""

    _parsed: Any = _UNREAD

    async def read_json(self) -> None:
        """Read and parse a JSON body now, so a bad one is refused as a 422 problem."""
        if not is_json(self.headers.get("content-type")):
            return
        try:
            raw = await self.body()
        except Exception as exc:  # a client gone, or the body limit cutting the stream
            # What FastAPI answers when it cannot read a body; BodyLimit replaces it by its 413.
            raise HTTPException(400, "There was an error reading the body") from exc
        if raw:
            self._parsed = loads(raw)

    async def json(self) -> Any:
        """The body parsed by `loads` (once)."""
        if self._parsed is _UNREAD:
            self._parsed = loads(await self.body())
        return self._parsed


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON body, if it takes one, is parsed by `loads` first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given a `StrictJSONRequest` whose body is already checked."""
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict_handler(request: Request) -> Response:
            strict = StrictJSONRequest(request.scope, request.receive)
            await strict.read_json()
            return await handler(strict)

        return strict_handler
