"""HTTP on the server's port, answered in websockets' process_request hook: the page's
static files (the HTML with its Content-Security-Policy), the references API (with the
access token), and the upgrade on WS_PATH, let through to the WebSocket handler. Every
request is checked first (security.request_problem: Host, Origin); GET and HEAD only.

    /                                 the page (static/index.html); /<name>: static/<name>
    /references?token=T               the references' descriptions (JSON)
    /references/<id>/<file>?token=T   audio.wav, rendered.bin or original.bin of one
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import re
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

from websockets.datastructures import Headers
from websockets.http11 import Response

from rtmri.streamer.server.references import Reference
from rtmri.streamer.server.security import request_problem, token_ok

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".json": "application/json", ".wav": "audio/wav",
                 ".bin": "application/octet-stream", ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8"}
# The font is 0.7 MB and changes only with the package: a browser keeps it a day, not per page load.
CACHED_SUFFIXES = {".woff2": "public, max-age=86400"}
# connect-src names the page's own ws:/wss: origin too: older browsers do not count it as 'self'.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
               "media-src 'self' blob:; connect-src 'self' {sockets}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
HOST_PATTERN = re.compile(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?")
WS_PATH = "/ws"
REFERENCES_PATH = "/references"
METHODS = ("GET", "HEAD")


class HttpRoutes:
    def __init__(self, references: list[Reference], token: str | None, loopback_only: bool,
                 allowed_origins: tuple[str, ...] = ()) -> None:
        self.references = {r.id: r for r in references}
        self.token = token
        self.loopback_only = loopback_only
        self.allowed_origins = allowed_origins
        self.static = {"/" + p.name: p for p in STATIC.iterdir() if p.is_file()}
        self.static["/"] = STATIC / "index.html"

    def process_request(self, connection, request) -> Response | None:
        """websockets' hook: the response, or None to go on with the WebSocket handshake."""
        if request.method not in METHODS:
            response = respond(HTTPStatus.METHOD_NOT_ALLOWED, f"{request.method[:20]} is not allowed here\n")
            response.headers["Allow"] = ", ".join(METHODS)
            return response
        response = self._answer(request)
        if request.method == "HEAD" and response is not None:
            return dataclasses.replace(response, body=b"")  # its headers, Content-Length included
        return response

    def _answer(self, request) -> Response | None:
        path, _, query = request.path.partition("?")
        websocket = any(value.lower() == "websocket" for value in request.headers.get_all("Upgrade"))
        problem = request_problem(request.headers, self.loopback_only, self.allowed_origins, websocket)
        if problem:
            return respond(HTTPStatus.FORBIDDEN, problem + "\n")
        if websocket:
            return None if path == WS_PATH else respond(HTTPStatus.NOT_FOUND, f"the WebSocket is at {WS_PATH}\n")
        if path in self.static:
            return self._static_file(self.static[path], request.headers.get("Host", ""))
        if path == REFERENCES_PATH or path.startswith(REFERENCES_PATH + "/"):
            if not token_ok(parse_qs(query).get("token", [None])[0], self.token):
                return respond(HTTPStatus.FORBIDDEN, "invalid or missing access token\n")
            return self._reference(path)
        return respond(HTTPStatus.NOT_FOUND, "not found\n")

    def _static_file(self, file: Path, host: str) -> Response:
        response = respond(HTTPStatus.OK, file.read_bytes(), CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
        if file.suffix in CACHED_SUFFIXES:
            del response.headers["Cache-Control"]  # Headers adds a value on assignment: replace it
            response.headers["Cache-Control"] = CACHED_SUFFIXES[file.suffix]
        if file.suffix == ".html":
            sockets = f"ws://{host} wss://{host}" if HOST_PATTERN.fullmatch(host) else ""
            response.headers["Content-Security-Policy"] = PAGE_POLICY.format(sockets=sockets)
        return response

    def _reference(self, path: str) -> Response:
        parts = path.strip("/").split("/")
        if len(parts) == 1:
            body = json.dumps([r.describe() for r in self.references.values()]).encode()
            return respond(HTTPStatus.OK, body, CONTENT_TYPES[".json"])
        reference = self.references.get(parts[1]) if len(parts) == 3 else None
        body = reference.files().get(parts[2]) if reference is not None else None
        if body is None:
            return respond(HTTPStatus.NOT_FOUND, "no such reference\n")
        return respond(HTTPStatus.OK, body, CONTENT_TYPES[Path(parts[2]).suffix])


def respond(status: HTTPStatus, body: str | bytes, content_type: str = "text/plain; charset=utf-8") -> Response:
    body = body.encode() if isinstance(body, str) else body
    headers = Headers([
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Connection", "close"),
        ("Content-Length", str(len(body))),
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ])
    return Response(status.value, status.phrase, headers, body)
