"""What the outbound auth methods share: header-safe credential values, quiet loggers.

A credential that goes into a header is checked before httpx sees it. h11, httpx's HTTP/1.1
engine, refuses a header value holding CR, LF, NUL or surrounding whitespace, and its
exception quotes the whole value: the secret would ride into a tool error or a log line.
Refusing it here gives an error that names the file instead.

Some libraries log what an auth flow adds: httpx logs every request's full URL at INFO (a
query-string API key with it), botocore its canonical request at DEBUG (a session token
with it). The methods that feed them cap those loggers at WARNING when they are built.
"""

from __future__ import annotations

import logging
import re

from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.errors import CredentialError

__all__ = ["cap_logger", "header_safe", "read_header_credential"]

# Control characters anywhere, or whitespace at either end.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]|^\s|\s$")


def header_safe(value: str, what: str) -> str:
    """`value` unchanged when it can travel in a header; else a CredentialError naming `what`
    (never the value)."""
    if _UNSAFE.search(value):
        raise CredentialError(
            f"{what} cannot be sent in an HTTP header "
            "(it holds a control character or surrounding whitespace)"
        )
    return value


def read_header_credential(credentials: CredentialStore, relative: str) -> str:
    """Read one credential file that will be sent in a header."""
    return header_safe(credentials.read(relative), f"credential {relative}")


def cap_logger(name: str) -> None:
    """Raise logger `name` to WARNING unless it is set higher already (NOTSET would inherit
    the root's level, DEBUG included)."""
    logger = logging.getLogger(name)
    if logger.level < logging.WARNING:
        logger.setLevel(logging.WARNING)
