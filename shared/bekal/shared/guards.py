"""What every request passes before the app reads it: who the client is (forwarded headers
only from the proxies the settings name) and how big its body may be (refused before it is
parsed)."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bekal.shared.problems import PROBLEM_JSON, Problem

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- the client's address ------------------------------------------------------------------


def parse_networks(value: str) -> tuple[Network, ...]:
    """``10.0.0.0/8, 192.0.2.7`` as networks; a bare address is a network of one."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False)
        for part in value.split(",")
        if part.strip()
    )


def _address(text: str) -> Address | None:
    """An address from a forwarded hop: ``192.0.2.1``, ``192.0.2.1:443``, ``[2001:db8::1]:443``,
    ``"[2001:db8::1]"``; None for anything else (``unknown``, an obfuscated name)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _forwarded_hops(headers: Headers) -> list[str]:
    """The addresses a request passed through, client first: RFC 7239 ``Forwarded`` when
    present, else ``X-Forwarded-For``; every instance of the header, in order."""
    forwarded = headers.getlist("forwarded")
    if forwarded:
        hops = []
        for element in ",".join(forwarded).split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    hops.append(value)
        return hops
    return [hop for value in headers.getlist("x-forwarded-for") for hop in value.split(",")]


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def resolve_client(peer: str | None, headers: Headers, trusted: Sequence[Network]) -> str | None:
    """The client's address: the socket's peer, unless the peer is a trusted proxy; then the
    forwarded hops are read from the nearest one back, and the first hop that is not a trusted
    proxy is the client. A hop that is not an address stops the walk at the proxy that
    reported it: an unreadable hop never lets a caller choose its own address."""
    if peer is None or not trusted:
        return peer
    nearest = _address(peer)
    if nearest is None or not _trusted(nearest, trusted):
        return peer
    for hop in reversed(_forwarded_hops(headers)):
        address = _address(hop)
        if address is None:
            break
        if not _trusted(address, trusted):
            return str(address)
        nearest = address
    return str(nearest)


def client_address(request: Request) -> str:
    """The client's address as every part of a service sees it (rate limits, logs): resolved
    once per request by ``ForwardedClient`` from the settings' trusted proxies."""
    return request.client.host if request.client else "unknown"


class ForwardedClient:
    """Puts the client's address (``resolve_client``) in the request's scope, so that
    ``request.client`` is the same for everyone down the line. With no trusted proxy (the
    default) forwarded headers are ignored and the socket's peer stays."""

    def __init__(self, app: ASGIApp, *, trusted: Iterable[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted and scope.get("client"):
            host, port = scope["client"]
            client = resolve_client(host, Headers(scope=scope), self.trusted)
            if client != host:
                scope = dict(scope)
                scope["client"] = (client, port)
        await self.app(scope, receive, send)


# --- the body's size -----------------------------------------------------------------------


def _too_large() -> bytes:
    problem = Problem(
        "Isi permintaan melebihi batas ukuran untuk alamat ini.",
        status=413,
        slug="content-too-large",
        title="Isi permintaan terlalu besar",
    )
    return json.dumps(problem.body()).encode()


class BodyLimit:
    """Caps every request body at ``max_body_size`` before the app reads it: Starlette's own
    limit (a declared Content-Length over the cap is refused before anything is read, a
    streamed body as soon as its bytes pass the cap), whose cap a route raises for itself
    with ``max_body_size=`` on its decorator (the registry's CSV upload). Its plain-text
    refusal is answered as problem+json here, like every other error of the API.
    """

    def __init__(self, app: ASGIApp, *, max_body_size: int) -> None:
        self.app = RequestBodyLimitMiddleware(app, max_body_size=max_body_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rewriting = False

        async def send_problem(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 413:
                headers = Headers(raw=message.get("headers", []))
                rewriting = headers.get("content-type", "").startswith("text/plain")
                if rewriting:
                    body = _too_large()
                    message = {
                        **message,
                        "headers": [
                            (b"content-type", PROBLEM_JSON.encode()),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                    await send(message)
                    await send({"type": "http.response.body", "body": body})
                    return
            if rewriting:
                return  # the plain-text body, already replaced
            await send(message)

        await self.app(scope, receive, send_problem)


# --- the text in a request -----------------------------------------------------------------

# C0 controls but tab, line feed and carriage return; DEL; and UTF-16 surrogates, which a JSON
# "\ud800" escape decodes to alone and no database can store as text.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
CONTROL_CHARACTER_MESSAGE = (
    "Tidak boleh memuat karakter kendali (NUL, U+0001-U+001F selain tab dan baris baru, DEL) "
    "atau surrogate UTF-16 tunggal."
)


def forbidden_character(value: str) -> str | None:
    """The first character of ``value`` no text field takes, as U+XXXX; None if none."""
    found = _FORBIDDEN.search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def _control_characters(value: Any, loc: tuple[str | int, ...]) -> Iterator[dict[str, Any]]:
    if isinstance(value, str):
        if (character := forbidden_character(value)) is not None:
            yield {
                "type": "control_character",
                "loc": loc,
                "msg": CONTROL_CHARACTER_MESSAGE,
                "input": character,
            }
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _control_characters(key, (*loc, str(key)))
            yield from _control_characters(item, (*loc, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _control_characters(item, (*loc, index))


async def refuse_control_characters(request: Request) -> None:
    """Every text an API request brings (its query and its JSON body) is free of control
    characters, or the request is refused with 422 naming each field, before any handler
    runs: SQLite would store a NUL, PostgreSQL refuses one mid-transaction.

    A dependency of every API router (bekal.shared.service); it reads the body only where
    the route has already parsed it as JSON (an upload streams past it unread). Path
    parameters are left to their routes: the public verification answers a malformed code
    exactly as an unknown one.
    """
    errors = [
        error
        for name, value in request.query_params.multi_items()
        for error in _control_characters(value, ("query", name))
    ]
    route = request.scope.get("route")
    content_type = request.headers.get("content-type", "")
    if getattr(route, "body_field", None) is not None and "json" in content_type:
        try:
            body = await request.json()  # already read and parsed by the route: cached
        except ValueError:
            body = None  # the route answers malformed JSON itself
        errors += _control_characters(body, ("body",))
    if errors:
        raise RequestValidationError(errors)
