"""Real upstream servers on loopback for tests of the gateway's outbound side.

(PYTEST_DONT_REWRITE: test modules import this module before pytest loads it as their
plugin, and it asserts nothing itself.)

Nothing here mocks httpx: every server listens on 127.0.0.1 on a free port and is stopped
at the end of its fixture.

Use it from a test module with ``pytest_plugins = ["support.upstream"]`` (the fixtures
below then exist for that module), or import the classes and context managers directly.

Fixtures
--------
``upstream`` (async, function scope)
    A running `RecordingUpstream` on the test's event loop.
``refused_url`` (function scope)
    ``http://127.0.0.1:PORT`` where a socket is bound but not listening: connections are
    refused, and no other test can take the port meanwhile.
``moto_server`` (module scope)
    A running `MotoServer` (moto's threaded server) that verifies SigV4 signatures.

RecordingUpstream
-----------------
``.url``
    ``http://127.0.0.1:PORT``, no trailing slash.
``.requests``
    Every request received, in order, as `RecordedRequest` (method, path, raw ``query``
    string, ``headers`` as a list of (name, value) pairs in arrival order with names as
    sent, ``body`` bytes; helpers ``header(name)``, ``header_values(name)``,
    ``query_params()``, ``form()``, ``json()``).
``.requests_to(path)``
    The requests whose path is ``path``.
``.set_handler(fn)``
    Answers every path without a route: ``fn(recorded) -> starlette Response`` (or an
    awaitable of one). Default: 200 ``{"ok": true}``.
``.route(path, fn)``
    Answers one exact path with ``fn``.
``.errors``
    Exceptions raised by handlers (each answered 500); assert it is empty.
``running_upstream()``
    The async context manager behind the fixture.

TokenServer
-----------
``TokenServer(upstream, client_id=..., client_secret=..., client_authentication="Basic" |
"Body", scopes=(), audience=None, extra_params=None, expires_in=3600, delay=0.0,
path="/oauth2/token")`` installs an OAuth2 token endpoint on ``upstream`` at ``.url``.
It checks ``grant_type=client_credentials``, the client authentication (Basic: RFC 6749
2.3.1 form-urlencoded id and secret in ``Authorization``, no secret in the body; Body:
``client_id`` and ``client_secret`` fields, no ``Authorization``), the ``scope`` set, the
``audience`` and every extra parameter; a failed check answers 400/401 with an OAuth error
and is appended to ``.rejections``. ``.count`` is the number of token requests,
``.issued`` the tokens handed out (``tok-1-...``, ``tok-2-...``). Attributes that can be
changed between calls: ``client_secret``, ``expires_in`` (None leaves ``expires_in`` out;
floats allowed), ``delay`` (seconds slept before answering, to pile up concurrent
callers), ``failure``: None, ``"500"`` (500 ``server_error``), ``"malformed"`` (200 with a
body that is not JSON), ``"missing_token"`` (200 JSON without ``access_token``) or
``"echo_secret"`` (401 ``invalid_client`` whose description repeats the client secret).
``.revoke(token=None)`` revokes one token or all; ``.is_valid(token)``. ``.protected(fn=None)``
is a handler for the data-source side: 401 unless ``Authorization: Bearer <valid token>``,
else ``fn`` (default 200 ``{"ok": true}``).

MotoServer
----------
moto's ``ThreadedMotoServer`` with IAM signature checking on. ``.url``; ``.user_keys``: an
IAM user's long-term keys (``AKIA...``, policy ``*``); ``.role_keys``: temporary keys with
a session token from ``sts:AssumeRole`` (``ASIA...``). Both are `AwsKeys` (access key id,
secret access key, session token). moto only checks POST signatures correctly: use e.g.
DynamoDB ``ListTables`` (``POST /``, ``X-Amz-Target: DynamoDB_20120810.ListTables``,
``Content-Type: application/x-amz-json-1.0``, body ``{}``). How the check is enabled: moto
verifies signatures once its ``INITIAL_NO_AUTH_ACTION_COUNT`` budget of unchecked requests
is used up. The setting is read from the environment when ``moto.settings`` is imported,
and the threaded server shares this process's settings, so the fixture does not depend on
import order: it sets the budget to infinity through ``POST /moto-api/reset-auth``,
creates the user, keys, role and policies, then sets it to 0, and puts the previous value
back (and resets moto's backends) when it stops.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import itertools
import json
import logging
import secrets
import socket
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = [
    "AwsKeys",
    "Handler",
    "MotoServer",
    "RecordedRequest",
    "RecordingUpstream",
    "TokenServer",
    "moto_server",
    "refused_url",
    "running_upstream",
    "upstream",
]

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the upstream received it."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_path: str = ""  # the path as sent, percent-encoding intact

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    def query_params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[RecordedRequest], "Response | Awaitable[Response]"]


def _ok(_: RecordedRequest) -> Response:
    return JSONResponse({"ok": True})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # pytest owns the process's signals; uvicorn would replace SIGINT's handler


class RecordingUpstream:
    """A Starlette app served by uvicorn on the current event loop; see the module docs."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        self.url = ""
        self._handler: Handler = _ok
        self._routes: dict[str, Handler] = {}
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    def set_handler(self, fn: Handler) -> None:
        self._handler = fn

    def route(self, path: str, fn: Handler) -> None:
        self._routes[path] = fn

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    async def _endpoint(self, request: Request) -> Response:
        recorded = RecordedRequest(
            method=request.method,
            path=request.scope["path"],
            query=request.scope["query_string"].decode("latin-1"),
            headers=[
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]
            ],
            body=await request.body(),
            raw_path=request.scope.get("raw_path", b"").decode("latin-1"),
        )
        self.requests.append(recorded)
        handler = self._routes.get(recorded.path, self._handler)
        try:
            result = handler(recorded)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            self.errors.append(exc)
            return PlainTextResponse("handler failed", status_code=500)
        return result

    async def start(self) -> None:
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=_METHODS)])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        # No log config: the test's logging stays as it is. No access log: it would print
        # query-string API keys, which are the upstream's to see and not the gateway's to log.
        # (`access_log=False` alone is not enough under pytest, whose log capture also hooks
        # loggers that do not propagate, and uvicorn logs whenever the logger has a handler.)
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        for _ in range(500):
            if self._server.started:
                return
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("the recording upstream did not start within 5 s")

    async def stop(self) -> None:
        """Stop at once. uvicorn's own shutdown polls and sleeps (about 0.2 s a server), so the
        serve task is cancelled and the listener and connections are closed here instead."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        self._server = self._task = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for connection in list(server.server_state.connections):
            connection.shutdown()
        for listener in server.servers:
            listener.close()
            await listener.wait_closed()


@contextlib.asynccontextmanager
async def running_upstream() -> AsyncIterator[RecordingUpstream]:
    server = RecordingUpstream()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def upstream() -> AsyncIterator[RecordingUpstream]:
    async with running_upstream() as server:
        yield server


@pytest.fixture
def refused_url() -> Iterator[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


TokenFailure = Literal["500", "malformed", "missing_token", "echo_secret"]


class TokenServer:
    """An OAuth2 client-credentials token endpoint on a RecordingUpstream."""

    def __init__(
        self,
        upstream: RecordingUpstream,
        *,
        client_id: str,
        client_secret: str,
        client_authentication: Literal["Basic", "Body"] = "Basic",
        scopes: tuple[str, ...] = (),
        audience: str | None = None,
        extra_params: Mapping[str, str] | None = None,
        expires_in: float | None = 3600,
        delay: float = 0.0,
        path: str = "/oauth2/token",
    ) -> None:
        self.upstream = upstream
        self.path = path
        self.url = upstream.url + path
        self.client_id = client_id
        self.client_secret = client_secret
        self.client_authentication = client_authentication
        self.scopes = scopes
        self.audience = audience
        self.extra_params = dict(extra_params or {})
        self.expires_in = expires_in
        self.delay = delay
        self.failure: TokenFailure | None = None
        self.issued: list[str] = []
        self.rejections: list[str] = []
        self._revoked: set[str] = set()
        self._serial = itertools.count(1)
        upstream.route(path, self._answer)

    @property
    def count(self) -> int:
        return len(self.upstream.requests_to(self.path))

    def is_valid(self, token: str) -> bool:
        return token in self.issued and token not in self._revoked

    def revoke(self, token: str | None = None) -> None:
        self._revoked.update(self.issued if token is None else [token])

    def protected(self, fn: Handler | None = None) -> Handler:
        """A data-source handler that wants a valid bearer token from this server."""

        def handler(recorded: RecordedRequest) -> Response | Awaitable[Response]:
            scheme, _, token = (recorded.header("authorization") or "").partition(" ")
            if scheme != "Bearer" or not self.is_valid(token):
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            return (fn or _ok)(recorded)

        return handler

    def _reject(self, status: int, error: str, why: str) -> Response:
        self.rejections.append(why)
        return JSONResponse({"error": error, "error_description": why}, status_code=status)

    def _client_problem(self, recorded: RecordedRequest, form: dict[str, str]) -> str | None:
        authorization = recorded.header("authorization")
        if self.client_authentication == "Body":
            if authorization is not None:
                return "Body client authentication, but an Authorization header came"
            if (form.get("client_id"), form.get("client_secret")) != (
                self.client_id,
                self.client_secret,
            ):
                return "wrong client_id or client_secret in the body"
            return None
        if "client_secret" in form:
            return "Basic client authentication, but client_secret is in the body"
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme != "Basic":
            return "no Basic Authorization header"
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        if (unquote_plus(user), unquote_plus(password)) != (self.client_id, self.client_secret):
            return "wrong Basic client credentials"
        return None

    async def _answer(self, recorded: RecordedRequest) -> Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failure == "500":
            return JSONResponse({"error": "server_error"}, status_code=500)
        if self.failure == "malformed":
            return PlainTextResponse("<html>not json", status_code=200)
        if self.failure == "echo_secret":
            description = f"client secret {self.client_secret} is wrong"
            return JSONResponse(
                {"error": "invalid_client", "error_description": description}, status_code=401
            )
        form = recorded.form()
        if recorded.method != "POST":
            return self._reject(405, "invalid_request", f"method {recorded.method}")
        if not (recorded.header("content-type") or "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return self._reject(400, "invalid_request", "not a form post")
        problem = self._client_problem(recorded, form)
        if problem is not None:
            return self._reject(401, "invalid_client", problem)
        if form.get("grant_type") != "client_credentials":
            return self._reject(400, "unsupported_grant_type", "grant_type")
        scope = form.get("scope")
        wanted = set(self.scopes) if self.scopes else None
        if (set(scope.split(" ")) if scope is not None else None) != wanted:
            return self._reject(400, "invalid_scope", f"scope {scope!r}")
        if form.get("audience") != self.audience:
            return self._reject(400, "invalid_request", f"audience {form.get('audience')!r}")
        for name, value in self.extra_params.items():
            if form.get(name) != value:
                return self._reject(400, "invalid_request", f"extra parameter {name}")
        if self.failure == "missing_token":
            return JSONResponse({"token_type": "Bearer", "expires_in": 3600})
        token = f"tok-{next(self._serial)}-{secrets.token_hex(4)}"
        self.issued.append(token)
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return JSONResponse(body)


@dataclass(frozen=True)
class AwsKeys:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


_ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


class MotoServer:
    """moto's threaded server with signature checks on; see the module docs."""

    account = "123456789012"

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""
        self._previous_budget = "inf"
        self.user_keys = AwsKeys("", "")
        self.role_keys = AwsKeys("", "")

    def _reset_auth(self, budget: str) -> str:
        request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
            self.url + "/moto-api/reset-auth",
            data=budget.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},  # a form type would hide the body from moto
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            previous: str = json.loads(answer.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
        return previous

    def start(self) -> None:
        import botocore.session  # type: ignore[import-untyped]

        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self._previous_budget = self._reset_auth("inf")
        session = botocore.session.Session()
        setup = {
            "endpoint_url": self.url,
            "region_name": "us-east-1",
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
        }
        iam = session.create_client("iam", **setup)
        iam.create_user(UserName="gateway")
        key = iam.create_access_key(UserName="gateway")["AccessKey"]
        iam.put_user_policy(UserName="gateway", PolicyName="all", PolicyDocument=_ALLOW_ALL)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{self.account}:user/gateway"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = iam.create_role(RoleName="gateway", AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName="gateway", PolicyName="all", PolicyDocument=_ALLOW_ALL)
        self.user_keys = AwsKeys(key["AccessKeyId"], key["SecretAccessKey"])
        sts = session.create_client(
            "sts",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.user_keys.access_key_id,
            aws_secret_access_key=self.user_keys.secret_access_key,
        )
        assumed = sts.assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="gateway")
        creds = assumed["Credentials"]
        self.role_keys = AwsKeys(
            creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
        )
        self._reset_auth("0")  # from now on every request's signature is checked

    def stop(self) -> None:
        try:
            self._reset_auth(self._previous_budget)
            reset = urllib.request.Request(self.url + "/moto-api/reset", method="POST")  # noqa: S310
            urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310
        finally:
            self._server.stop()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    # botocore logs the setup calls' answers (the new keys) at DEBUG: keep them out of the
    # tests' log capture.
    botocore_logger = logging.getLogger("botocore")
    level = botocore_logger.level
    botocore_logger.setLevel(logging.WARNING)
    server = MotoServer()
    try:
        server.start()
    finally:
        botocore_logger.setLevel(level)
    try:
        yield server
    finally:
        server.stop()
