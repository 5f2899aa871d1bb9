"""mcpgate: HTTP APIs as MCP servers on Kubernetes."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs a fifth of a second, and the
    # command's first moments are when a Ctrl-C is not yet its own (gateway/signals.py).
    if name != "__version__":
        raise AttributeError(f"module 'mcpgate' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("mcpgate")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0"
    globals()["__version__"] = found
    return found
