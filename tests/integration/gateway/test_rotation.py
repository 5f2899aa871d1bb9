"""Rotated Secret values take effect without a restart, and no call fails meanwhile."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.render.config import gateway_config

from support.gateway import mcp_session, running_gateway
from support.upstream import RecordingUpstream

OLD, NEW = "token-old-31f0", "token-new-92a7"


async def test_rotation_under_load(upstream: RecordingUpstream, tmp_path: Path) -> None:
    token = tmp_path / "creds" / "token"
    token.parent.mkdir()
    token.write_text(OLD + "\n")
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
    config = gateway_config(server, {"api": source}, credentials_dir=str(tmp_path))

    swapped_after: int | None = None
    async with running_gateway(config) as gw, mcp_session(gw.url) as client:

        async def call(n: int) -> bool:
            result = await client.call_tool("get_item", {"n": n})
            return result.is_error is False

        tasks = []
        for n in range(60):  # 20 calls a second for three seconds
            if n == 30:
                # As kubelet does it: a new file renamed over the old one.
                fresh = token.with_name(".token.new")
                fresh.write_text(NEW + "\n")
                os.replace(fresh, token)
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
