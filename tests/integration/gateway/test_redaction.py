"""Issue #15's attack on the error excerpt: an API that echoes what it received lets the
caller choose, by the length of an argument, where the 2 KiB cut falls. Before, the
excerpt was cut and then redacted, so a credential cut one character short went out
whole but for its last character (and Basic's base64 decoded to `user:passwor`). Now the
whole body is redacted first, in every form an API might echo: raw, percent-encoded,
JSON-escaped, HTML-escaped, base64 for Basic; the default AWS chain's keys included.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import Response

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.gateway.redaction import MARK, Redaction
from mcpgate.gateway.tools import EXCERPT_CHARS
from mcpgate.render.config import gateway_config

from support.gateway import mcp_session, running_gateway
from support.upstream import RecordedRequest, RecordingUpstream, TokenServer

# Values with the characters encoders rewrite: `/`, `&`, `+`, `=`, a space, non-ASCII.
SECRETS = {
    "bearer": "CANARY-bearer/7f3a0&x+y=",
    "apikey": "canary-apikey<9c>&'q",
    "user": "canary-user",
    "password": 'canary-pa ss"w/ord',
    "client": "canary-client-secret-9d8e7f",
    "akid": "AKIACANARY00000001",
    "secret": "canary-aws-secret/6b5a4c",
    "session": "canary-aws-session+3c2b1a==",
}
AMBIENT = {
    "AWS_ACCESS_KEY_ID": "AKIAAMBIENT000000001",
    "AWS_SECRET_ACCESS_KEY": "ambient-secret/key+0a1b2c",
    "AWS_SESSION_TOKEN": "ambient-session/token==9f8e",
}
SOURCES: dict[str, dict[str, Any]] = {
    "s-bearer": {"type": "Bearer", "bearer": {"tokenSecretRef": {"name": "c", "key": "bearer"}}},
    "s-apikey": {
        "type": "ApiKey",
        "apiKey": {"name": "X-Key", "valueSecretRef": {"name": "c", "key": "apikey"}},
    },
    "s-basic": {
        "type": "Basic",
        "basic": {
            "usernameSecretRef": {"name": "c", "key": "user"},
            "passwordSecretRef": {"name": "c", "key": "password"},
        },
    },
    "s-oauth": {
        "type": "OAuth2ClientCredentials",
        "oauth2ClientCredentials": {
            "tokenUrl": "http://127.0.0.1:1/token",  # set to the token server below
            "clientId": "cid",
            "clientSecretSecretRef": {"name": "c", "key": "client"},
        },
    },
    "s-aws": {
        "type": "AwsSigV4",
        "awsSigV4": {
            "region": "eu-west-1",
            "service": "execute-api",
            "accessKeyIdSecretRef": {"name": "c", "key": "akid"},
            "secretAccessKeySecretRef": {"name": "c", "key": "secret"},
            "sessionTokenSecretRef": {"name": "c", "key": "session"},
        },
    },
    "s-ambient": {"type": "AwsSigV4", "awsSigV4": {"region": "eu-west-1", "service": "sts"}},
}

FORMS = {
    "raw": lambda v: v,
    "percent": lambda v: quote(v, safe=""),
    "percent-lower": lambda v: "".join(
        part.lower() if part.startswith("%") else part for part in _pct_parts(quote(v, safe=""))
    ),
    "form": lambda v: quote_plus(v),
    "json": lambda v: json.dumps(v)[1:-1],
    "json-slash-amp": lambda v: json.dumps(v)[1:-1].replace("/", "\\/").replace("&", "\\u0026"),
    "json-ascii-all": lambda v: "".join(
        c if c.isalnum() else json.dumps(c).strip('"') if ord(c) > 0xFFFF else f"\\u{ord(c):04x}"
        for c in v
    ),
    "html": lambda v: html.escape(v),
    "html-numeric": lambda v: "".join(c if c.isalnum() else f"&#{ord(c)};" for c in v),
    "html-hex": lambda v: "".join(c if c.isalnum() else f"&#x{ord(c):X};" for c in v),
}


def _pct_parts(text: str) -> list[str]:
    parts, i = [], 0
    while i < len(text):
        if text[i] == "%":
            parts.append(text[i : i + 3])
            i += 3
        else:
            parts.append(text[i])
            i += 1
    return parts


def _credential(request: RecordedRequest) -> str:
    """What the API received as the credential, as it would quote it back."""
    for name in ("x-amz-security-token", "x-key"):
        if (value := request.header(name)) is not None:
            return value
    authorization = request.header("authorization") or ""
    return authorization.split(" ", 1)[-1]  # the token, or Basic's base64


def _echo(request: RecordedRequest) -> Response:
    """An API whose error quotes the credential it got, after `pad` characters, in the
    encoding `form` (both chosen by the caller through query arguments)."""
    query = parse_qs(request.query)
    pad, form = int(query["pad"][0]), query["form"][0]
    body = "e" * pad + FORMS[form](_credential(request)) + " (end)"
    return Response(body, status_code=400, media_type="text/plain")


def _expected_values(issued: list[str]) -> dict[str, str]:
    pair = f"{SECRETS['user']}:{SECRETS['password']}".encode()
    return {
        **SECRETS,
        **AMBIENT,
        "basic-base64": base64.b64encode(pair).decode(),
        **{f"oauth-token-{i}": token for i, token in enumerate(issued)},
    }


async def test_no_cut_and_no_encoding_lets_a_credential_out(
    upstream: RecordingUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in AMBIENT.items():
        monkeypatch.setenv(name, value)  # the default chain reads them
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    token_server = TokenServer(
        upstream, client_id="cid", client_secret=SECRETS["client"], path="/token"
    )
    folder = tmp_path / "c"
    folder.mkdir()
    for key, value in SECRETS.items():
        (folder / key).write_text(value)
    upstream.set_handler(_echo)
    upstream.route("/token", token_server._answer)
    sources = {}
    for name, auth in SOURCES.items():
        auth = json.loads(json.dumps(auth))
        if name == "s-oauth":
            auth["oauth2ClientCredentials"]["tokenUrl"] = token_server.url
        sources[name] = HttpApiDataSource.model_validate(
            {"metadata": {"name": name}, "spec": {"baseUrl": upstream.url, "auth": auth}}
        )
    params = [
        {"name": "pad", "type": "Integer", "required": True},
        {"name": "form", "type": "String", "required": True},
    ]
    server = McpServer.model_validate(
        {
            "metadata": {"name": "echoed"},
            "spec": {
                "tools": [
                    {
                        "name": f"t-{name}",
                        "dataSource": name,
                        "parameters": params,
                        "request": {"path": "/x", "query": {"pad": ":pad", "form": ":form"}},
                    }
                    for name in SOURCES
                ]
            },
        }
    )
    config = gateway_config(
        server, sources, credentials_dir=str(tmp_path), allow_loopback_destinations=True
    )
    texts: list[str] = []
    async with running_gateway(config) as gw, mcp_session(gw.url) as client:
        for name in SOURCES:
            for form in FORMS:
                # The cut one, two and half a value's length before its end, and past it.
                for short in (1, 2, 9, 0, -10):
                    result = await client.call_tool(
                        f"t-{name}", {"pad": EXCERPT_CHARS - 30 + short, "form": form}
                    )
                    assert result.is_error is True
                    (content,) = result.content
                    texts.append(getattr(content, "text", ""))
    issued = token_server.issued
    assert issued, "the OAuth2 token was fetched"
    assert sum(MARK in text for text in texts) > len(texts) // 2  # the echoes were there
    for label, value in _expected_values(issued).items():
        for form, encode in FORMS.items():
            encoded = encode(value)
            # No form of a value, nor its first two-thirds, is in any answer.
            piece = encoded[: max(4, len(encoded) * 2 // 3)]
            leaks = [t for t in texts if piece in t]
            assert leaks == [], f"{label} ({form}) leaked: {leaks[0][-80:]!r}"


# --- the redactor itself ---------------------------------------------------------------

_SECRET = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="·", exclude_categories=("Cs",)),
    min_size=4,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(secret=_SECRET, form=st.sampled_from(sorted(FORMS)), before=st.integers(0, 100))
def test_every_form_of_a_value_is_removed_wherever_the_cut_falls(
    secret: str, form: str, before: int
) -> None:
    encoded = FORMS[form](secret)
    redaction = Redaction([secret])
    text = "·" * before + encoded + "·" * 5
    assert redaction(text) == "·" * before + MARK + "·" * 5
    for limit in range(max(0, before - 2), before + len(encoded) + 2):
        excerpt = redaction.excerpt(text, limit)
        assert excerpt.strip("·") in ("", MARK), (limit, excerpt)


def test_values_under_4_characters_are_not_credentials() -> None:
    assert Redaction(["abc"])("abc abc") == "abc abc"


def test_an_excerpt_without_secrets_is_the_first_characters() -> None:
    assert Redaction([])("abcdef") == "abcdef"
    assert Redaction(["zzzz"]).excerpt("abcdef" * 1000, 10) == "abcdefabcd"
