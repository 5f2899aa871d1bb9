"""What `tools/list` shows, read by the official MCP client: a tool's title at the top
level (its `title` field, else `annotations.title`), and `destructiveHint: false` said
for writes, since MCP's default is true."""

from __future__ import annotations

from pathlib import Path

from support.gateway import gateway_from_manifests, mcp_session

MANIFESTS = """
apiVersion: mcpgate.io/v1alpha1
kind: HttpApiDataSource
metadata: {name: notes}
spec: {baseUrl: "http://127.0.0.1:9/api"}
---
apiVersion: mcpgate.io/v1alpha1
kind: McpServer
metadata: {name: notes-mcp}
spec:
  tools:
    - name: add_note
      description: Add a note.
      dataSource: notes
      request: {method: POST, path: /notes}
      annotations: {title: Add a note}
    - name: drop_note
      description: Drop a note.
      dataSource: notes
      parameters: [{name: id, type: String, required: true}]
      request: {method: DELETE, path: /notes/:id}
    - name: get_note
      title: Read a note
      description: Read a note.
      dataSource: notes
      request: {path: /notes/1}
      annotations: {title: Annotated title}
    - name: list_notes
      title: List the notes
      description: List the notes.
      dataSource: notes
      request: {path: /notes}
"""


async def test_titles_and_write_hints_reach_the_client(tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text(MANIFESTS)
    async with gateway_from_manifests([tmp_path]) as gw:
        async with mcp_session(gw.url) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["add_note"].title == "Add a note"
    assert tools["drop_note"].title is None
    add, drop = tools["add_note"].annotations, tools["drop_note"].annotations
    assert add is not None
    assert drop is not None
    assert add.destructive_hint is False
    assert drop.destructive_hint is True


async def test_the_title_field_comes_first_and_annotations_keep_theirs(tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text(MANIFESTS)
    async with gateway_from_manifests([tmp_path]) as gw:
        async with mcp_session(gw.url) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["get_note"].title == "Read a note"
    assert tools["list_notes"].title == "List the notes"
    get, listed = tools["get_note"].annotations, tools["list_notes"].annotations
    assert get is not None
    assert listed is not None
    assert get.title == "Annotated title"  # annotations are sent as given
    assert listed.title is None
