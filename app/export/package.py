"""A zip streamed as it is built: the JSONL first, then its dataset card (which needs the finished JSONL).

Pure: lines in, bytes out; nothing is held but the compressor's window and one block of output.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

from app.export.card import card_markdown

MEDIA_TYPE = "application/zip"
BLOCK_BYTES = 64 * 1024


class _Sink:
    """A write-only, unseekable file for ZipFile: it keeps what was written until the stream takes it."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.size += len(data)
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks, self.size = [], 0
        return data


def zip_stream(lines: Iterator[str], *, stem: str, card: Callable[[], dict[str, Any]]) -> Iterator[bytes]:
    """`{stem}.jsonl`, then `{stem}.card.json` and `{stem}.card.md` from `card()` called once the lines are
    exhausted. Yields blocks of about BLOCK_BYTES."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(f"{stem}.jsonl", mode="w", force_zip64=True) as member:
            for line in lines:
                member.write(line.encode())
                if sink.size >= BLOCK_BYTES:
                    yield sink.take()
        finished = card()
        archive.writestr(f"{stem}.card.json", json.dumps(finished, ensure_ascii=False, indent=2) + "\n")
        archive.writestr(f"{stem}.card.md", card_markdown(finished))
    yield sink.take()
