"""The demo project's prompt set, shipped with the package.

``prompts.jsonl`` holds one import row per line, in the same format an admin uploads:
``{"prompt": str, "system"?: str, "external_id": "demo-NNN", "metadata": {"category": str, ...}}`` or
``{"messages": [{"role": ..., "content": ...}, ...], "external_id": ..., "metadata": {...}}``.
Categories: email, math, code, advice, explanation, creative, summary, care (medical, legal, financial,
safety; one harmful request with ``metadata.expected == "refuse"``). Math rows carry ``metadata.answer``.
"""

import json
from pathlib import Path
from typing import Any

PROMPTS_PATH = Path(__file__).with_name("prompts.jsonl")


def demo_prompt_rows() -> list[dict[str, Any]]:
    """The demo rows as parsed JSON objects, in file order, for the regular prompt importer."""
    with PROMPTS_PATH.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
