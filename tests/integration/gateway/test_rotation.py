"""Rotated Secret values take effect without a restart, and no call fails meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.gateway.config import GatewayConfig
from mcpgate.render.config import gateway_config

from support.gateway import mcp_session, running_gateway
from support.paths import replace_file
from support.upstream import RecordingUpstream

OLD, NEW = "token-old-31f0", "token-new-92a7"


def _bearer_config(upstream: RecordingUpstream, tmp_path: Path) -> GatewayConfig:
    """A tool `get_item(n)` on a data source with a Bearer token from creds/token."""
    server = McpServer.model_validate(
        {
            "metadata": {"name": "rot"},
            "spec": {
                "tools": [
                    {
                        "name": "get_item",
                        "dataSource": "api",
                        "parameters": [{"name": "n", "type": "Integer", "required": True}],
                        "request": {"path": "/items/:n"},
                    }
                ]
            },
        }
    )
    source = HttpApiDataSource.model_validate(
        {
            "metadata": {"name": "api"},
            "spec": {
                "baseUrl": upstream.url,
                "auth": {
                    "type": "Bearer",
                    "bearer": {"tokenSecretRef": {"name": "creds", "key": "token"}},
                },
            },
        }
    )
    return gateway_config(
        server, {"api": source}, credentials_dir=str(tmp_path), allow_loopback_destinations=True
    )


async def test_rotation_under_load(upstream: RecordingUpstream, tmp_path: Path) -> None:
    token = tmp_path / "creds" / "token"
    token.parent.mkdir()
    token.write_text(OLD + "\n")
    config = _bearer_config(upstream, tmp_path)

    swapped_after: int | None = None
    async with running_gateway(config) as gw, mcp_session(gw.url) as client:

        async def call(n: int) -> bool:
            result = await client.call_tool("get_item", {"n": n})
            return result.is_error is False

        tasks = []
        for n in range(60):  # 20 calls a second for three seconds
            if n == 30:
                replace_file(token, NEW + "\n")
                swapped_after = n
            tasks.append(asyncio.create_task(call(n)))
            await asyncio.sleep(0.05)
        results = await asyncio.gather(*tasks)

    assert all(results), "every call succeeded"
    assert swapped_after is not None
    by_item = {int(r.path.rsplit("/", 1)[1]): r.header("authorization") for r in upstream.requests}
    assert len(by_item) == 60
    assert by_item[0] == f"Bearer {OLD}"
    assert all(by_item[n] == f"Bearer {NEW}" for n in range(swapped_after, 60))


async def test_a_value_written_before_a_call_is_sent_is_the_one_it_uses(
    upstream: RecordingUpstream, tmp_path: Path
) -> None:
    """With the gateway busy (16 callers, so that each turn of its loop serves several
    calls), a call sent after a rotation has finished is sent with the new value, every
    time: the gateway checks files once per turn, never with an older turn's answer."""
    token = tmp_path / "creds" / "token"
    token.parent.mkdir()
    token.write_text("token-busy\n")
    config = _bearer_config(upstream, tmp_path)
    headers = {"content-type": "application/json", "accept": "application/json"}

    def body(n: int) -> dict[str, object]:
        arguments = {"name": "get_item", "arguments": {"n": n}}
        return {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": arguments}

    async with running_gateway(config) as gw, httpx.AsyncClient(headers=headers) as http:
        stop = asyncio.Event()

        async def busy(worker: int) -> int:
            calls = 0
            while not stop.is_set():
                answer = await http.post(gw.url, json=body(100_000 + worker))
                assert answer.status_code == 200
                calls += 1
            return calls

        workers = [asyncio.create_task(busy(w)) for w in range(16)]
        try:
            for n in range(40):
                replace_file(token, f"token-{n}\n")
                answer = await http.post(gw.url, json=body(n))
                assert answer.json()["result"]["isError"] is False
        finally:
            stop.set()
            background = await asyncio.gather(*workers)

    assert sum(background) >= 40, "the gateway was busy meanwhile"
    sent = {r.path: r.header("authorization") for r in upstream.requests}
    assert [sent[f"/items/{n}"] for n in range(40)] == [f"Bearer token-{n}" for n in range(40)]
