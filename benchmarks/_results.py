"""Where a benchmark script's results go: ``OUT.jsonl`` (one JSON row per measurement) and ``OUT.md`` (the table)."""
from __future__ import annotations

import json
from pathlib import Path


def write_results(out: str | None, rows: list[dict], lines: list[str]) -> None:
    """Print the markdown ``lines``; with ``out``, also write ``OUT.jsonl`` (``rows``) and ``OUT.md``."""
    print("\n".join(lines))
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        path.with_suffix(".md").write_text("\n".join(lines) + "\n")
