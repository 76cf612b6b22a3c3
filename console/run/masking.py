"""Streaming secret masking: replace secret values in output as it arrives, chunk by chunk.

A secret can straddle two reads, so the masker holds back the end of a chunk that may be the
start of a secret (at most `len(longest) - 1` bytes) until more data, or the end of the
stream, shows whether it is one.
The result equals a one-shot scan of the whole stream: at each position the longest secret
that matches there is replaced by `***`, and the scan resumes after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = b"***"


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


class StreamMasker:
    """Bytes in, bytes out: `feed` each chunk, then `flush` once at the end of the stream.

    Every byte fed comes out exactly once (masked or not), either from the `feed` call that
    brought it or from a later one, at the latest from `flush`.
    """

    def __init__(self, secrets: Iterable[str | bytes]) -> None:
        # Longest first, so that of two secrets starting at the same byte the longer wins.
        self._values = sorted({_as_bytes(s) for s in secrets if s}, key=len, reverse=True)
        self._hold = len(self._values[0]) - 1 if self._values else 0
        # re's alternation takes the first alternative that matches: the longest.
        self._pattern = (
            re.compile(b"|".join(re.escape(value) for value in self._values))
            if self._values
            else None
        )
        self._carry = b""

    @property
    def active(self) -> bool:
        """False when there is nothing to mask: output passes through untouched."""
        return bool(self._values)

    def feed(self, chunk: bytes) -> bytes:
        if not self._values:
            return chunk
        data = self._carry + chunk if self._carry else chunk
        # A match starting before `settled` fits in `data` whatever its length, so it is
        # exactly the match a one-shot scan would find there; later starts must wait.
        settled = len(data) - self._hold
        out, position = self._mask_until(data, settled)
        keep_from = self._undecided_from(data, max(position, settled))
        out.append(data[position:keep_from])
        self._carry = data[keep_from:]
        return b"".join(out)

    def _undecided_from(self, data: bytes, start: int) -> int:
        """The first offset from `start` where a secret may still begin; len(data) if none.

        Holding back only that (not a fixed `len(longest) - 1` bytes) keeps a live log
        tail live: output that cannot be the start of a secret is written at once.
        """
        end = len(data)
        for offset in range(start, end):
            tail = data[offset:]
            for value in self._values:
                if value.startswith(tail) or tail.startswith(value):
                    return offset
        return end

    def flush(self) -> bytes:
        """The held-back tail, masked; the masker is ready for a new stream afterwards."""
        if not self._carry:
            return b""
        tail, self._carry = self._carry, b""
        out, position = self._mask_until(tail, len(tail))
        out.append(tail[position:])
        return b"".join(out)

    def _mask_until(self, data: bytes, stop: int) -> tuple[list[bytes], int]:
        """Mask every match that starts before `stop`, scanning left to right.

        Returns the output so far and the offset where unscanned data begins.
        """
        assert self._pattern is not None
        # bytes.find runs at memory speed; a regex alternation has no fast literal scan.
        # So find where the first secret occurs, and only from there let the regex work.
        found = [at for at in (data.find(value) for value in self._values) if at >= 0]
        out: list[bytes] = []
        position = 0
        if not found or min(found) >= stop:
            return out, position
        for match in self._pattern.finditer(data, min(found)):
            start = match.start()
            if start >= stop:
                break
            out.append(data[position:start])
            out.append(MASK)
            position = match.end()
        return out, position


def mask_all(data: bytes, secrets: Iterable[str | bytes]) -> bytes:
    """One-shot masking of a whole buffer, with the same rule as the streaming masker."""
    masker = StreamMasker(secrets)
    return masker.feed(data) + masker.flush()
