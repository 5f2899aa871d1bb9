"""AWS Signature Version 4, computed by botocore's signer at send time.

Why at send time, in the auth flow: a signature is bound to its timestamp (AWS accepts 15
minutes of skew) and to the exact bytes sent, so every attempt that goes through
`client.send`, a retry of the same `httpx.Request` included, is signed afresh; the previous
attempt's signing headers are dropped first.

What is signed: method, URL (path and query as they will be sent), every header except the
hop-by-hop ones botocore leaves out, and the SHA-256 of the body, which is also sent as
`X-Amz-Content-Sha256` (services such as S3 require it; the others ignore it).

Credentials come from the mounted files, read on every request (a `stat` when nothing
changed) so that rotation needs no restart, or, when no key file is configured, from
botocore's default chain (environment, IRSA web identity, pod identity, instance profile),
resolved once, lazily, in a worker thread; refreshable credentials refresh through
`get_frozen_credentials`, in a worker thread when a refresh is due.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncGenerator, Generator
from typing import Any

import botocore.auth  # type: ignore[import-untyped]
import botocore.awsrequest  # type: ignore[import-untyped]
import botocore.credentials  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import httpx

from mcpgate.gateway.auth._common import cap_logger, read_header_credential
from mcpgate.gateway.config import AwsSigV4Config
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.errors import CredentialError

__all__ = ["AwsSigV4Auth"]

# Set by the signer; stale copies from an earlier attempt are removed before signing.
_SIGNING_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256")
# How long an empty default chain is believed before it is asked again (IMDS lookups are slow).
_EMPTY_CHAIN_RETRY_SECONDS = 30.0


class AwsSigV4Auth(httpx.Auth):
    """Signs each request for one region and service."""

    requires_request_body = True  # the payload hash needs the body's bytes

    def __init__(self, config: AwsSigV4Config, credentials: CredentialStore) -> None:
        from_files = config.access_key_id_file is not None
        if from_files != (config.secret_access_key_file is not None):
            raise ValueError("SigV4 needs both key files or neither (the default chain)")
        if not from_files and config.session_token_file is not None:
            raise ValueError("a SigV4 session token file needs the key files too")
        self._config = config
        self._credentials = credentials
        self._from_files = from_files
        self._chain: Any = None  # botocore Credentials, once resolved
        self._chain_checked_at: float | None = None
        self._chain_lock = threading.Lock()
        cap_logger("botocore")  # it logs the canonical request, session token included, at DEBUG

    def __repr__(self) -> str:
        source = "files" if self._from_files else "default chain"
        return (
            f"AwsSigV4Auth(region={self._config.region!r}, service={self._config.service!r}, "
            f"credentials from {source})"
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Sync clients: httpx has read the body already (requires_request_body).
        if self._from_files:
            credentials = self._file_credentials()
        else:
            credentials = _frozen(self._resolve_chain())
        self._sign(request, credentials)
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        self._sign(request, await self._async_credentials())
        yield request

    async def _async_credentials(self) -> Any:
        if self._from_files:
            return self._file_credentials()
        chain = self._chain
        if chain is None:  # first use: botocore reads config files and may call IMDS
            chain = await asyncio.to_thread(self._resolve_chain)
        refresh_needed = getattr(chain, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            return await asyncio.to_thread(_frozen, chain)  # may call STS or IMDS
        return _frozen(chain)

    def _file_credentials(self) -> Any:
        config = self._config
        assert config.access_key_id_file is not None
        assert config.secret_access_key_file is not None
        access_key = read_header_credential(self._credentials, config.access_key_id_file)
        secret_key = self._credentials.read(config.secret_access_key_file)
        token = None
        if config.session_token_file is not None:
            token = read_header_credential(self._credentials, config.session_token_file)
        return botocore.credentials.Credentials(access_key, secret_key, token)

    def _resolve_chain(self) -> Any:
        """botocore's default credentials, resolved once (blocking: call from a thread)."""
        with self._chain_lock:
            checked = self._chain_checked_at
            now = time.monotonic()
            if self._chain is None and (
                checked is None or now - checked >= _EMPTY_CHAIN_RETRY_SECONDS
            ):
                self._chain_checked_at = now
                try:
                    self._chain = botocore.session.Session().get_credentials()
                except botocore.exceptions.BotoCoreError as exc:
                    raise CredentialError(
                        f"the default AWS credential chain failed ({type(exc).__name__})"
                    ) from None
            chain = self._chain
        if chain is None:
            raise CredentialError("the default AWS credential chain found no credentials")
        return chain

    def _sign(self, request: httpx.Request, credentials: Any) -> None:
        for name in _SIGNING_HEADERS:
            request.headers.pop(name, None)
        body = request.content
        aws_request = botocore.awsrequest.AWSRequest(
            method=request.method, url=str(request.url), data=body
        )
        for name, value in request.headers.multi_items():
            aws_request.headers[name] = value  # HTTPHeaders appends: repeated headers stay
        aws_request.headers["X-Amz-Content-Sha256"] = hashlib.sha256(body).hexdigest()
        signer = botocore.auth.SigV4Auth(credentials, self._config.service, self._config.region)
        signer.add_auth(aws_request)
        for name in _SIGNING_HEADERS:
            value = aws_request.headers.get(name)
            if value is not None:
                request.headers[name] = str(value)


def _frozen(chain: Any) -> Any:
    """One consistent (key, secret, token) triple; refreshes temporary credentials if due."""
    try:
        return chain.get_frozen_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise CredentialError(
            f"refreshing AWS credentials from the default chain failed ({type(exc).__name__})"
        ) from None
