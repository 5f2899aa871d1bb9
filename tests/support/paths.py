"""Where the project's files are, for tests, and how a test writes one as kubelet does."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CRDS = ROOT / "crds"
DOCS = ROOT / "docs"
EXAMPLE_DIRS = sorted(p for p in EXAMPLES.iterdir() if p.is_dir())


def replace_file(path: Path, text: str) -> None:
    """Write `text` to `path` as kubelet updates a Secret volume: a new file beside it,
    renamed over the old one (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f".{path.name}.new")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)
