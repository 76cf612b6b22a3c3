"""Streaming secret masking: replace secret values in output as it arrives, chunk by chunk.

A secret can straddle two reads, so the masker holds back the end of a chunk that may be the
start of a secret (at most `len(longest) - 1` bytes) until more data, or the end of the
stream, shows whether it is one.
The result equals a one-shot scan of the whole stream: at each position the longest secret
that matches there is replaced by `***`, and the scan resumes after it.

`encoded_forms` gives what a secret looks like once a step has encoded it (base64, hex,
percent-encoding); the run masks those forms alongside the secret itself.
"""

from __future__ import annotations

import base64
import re
import string
from collections.abc import Callable, Iterable

MASK = b"***"
# Candidate offsets are found by a secret's first HEAD bytes; a shorter tail is checked alone.
_HEAD = 4
# Secrets sharing a prefix this long are searched for as one (`bytes.find` per prefix).
_MIN_ANCHOR = 4


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _common_prefix(a: bytes, b: bytes) -> bytes:
    size = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        size += 1
    return a[:size]


def _anchors(values: Iterable[bytes]) -> tuple[bytes, ...]:
    """A few prefixes such that every value starts with one of them.

    Each is one `bytes.find` per chunk, so forms of one secret that begin alike (the secret
    and its percent-encodings, base64 padded and unpadded) are looked for once.
    """
    anchors: list[bytes] = []
    for value in sorted(values):  # values sharing a prefix sort next to each other
        if anchors and value.startswith(anchors[-1]):
            continue
        shared = _common_prefix(anchors[-1], value) if anchors else b""
        if len(shared) >= _MIN_ANCHOR:
            anchors[-1] = shared
        else:
            anchors.append(value)
    return tuple(anchors)


class StreamMasker:
    """Bytes in, bytes out: `feed` each chunk, then `flush` once at the end of the stream.

    Every byte fed comes out exactly once (masked or not), either from the `feed` call that
    brought it or from a later one, at the latest from `flush`.
    """

    def __init__(self, secrets: Iterable[str | bytes]) -> None:
        # Longest first, so that of two secrets starting at the same byte the longer wins.
        self._values = sorted({_as_bytes(s) for s in secrets if s}, key=len, reverse=True)
        self._hold = len(self._values[0]) - 1 if self._values else 0
        # One compiled alternation, tried only where an anchor was found; re's alternation
        # takes the first alternative that matches: the longest.
        self._pattern = re.compile(b"|".join(re.escape(value) for value in self._values))
        self._anchors = _anchors(self._values)
        self._heads = re.compile(
            b"|".join(re.escape(head) for head in sorted({v[:_HEAD] for v in self._values}))
        )
        self._by_head: dict[bytes, list[bytes]] = {}
        for value in self._values:
            self._by_head.setdefault(value[:_HEAD], []).append(value)
        self._short_prefixes = {
            value[:size] for value in self._values for size in range(1, min(_HEAD, len(value)))
        }
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
        short_from = max(start, end - _HEAD + 1)  # tails too short to hold a whole head
        offset = start
        while offset < short_from:
            found = self._heads.search(data, offset)
            if found is None or found.start() >= short_from:
                break
            offset = found.start()
            if self._pattern.match(data, offset) or self._may_continue(data, offset):
                return offset
            offset += 1
        for offset in range(short_from, end):
            if data[offset:] in self._short_prefixes or self._pattern.match(data, offset):
                return offset
        return end

    def _may_continue(self, data: bytes, offset: int) -> bool:
        """Whether data[offset:] is the unfinished start of a secret."""
        tail = data[offset:]
        return any(
            len(value) > len(tail) and value.startswith(tail)
            for value in self._by_head.get(tail[:_HEAD], ())
        )

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
        # bytes.find runs at memory speed; a regex alternation has no fast literal scan.
        # So the anchors say where a secret may start, and only there the regex is tried.
        upcoming = {anchor: data.find(anchor) for anchor in self._anchors}
        out: list[bytes] = []
        position = 0
        while True:
            starts = [at for at in upcoming.values() if at >= 0]
            if not starts:
                break
            start = min(starts)
            if start >= stop:
                break
            match = self._pattern.match(data, start)
            if match is not None:
                out.append(data[position:start])
                out.append(MASK)
                position = match.end()
            resume = position if match is not None else start + 1
            for anchor, at in upcoming.items():
                if 0 <= at < resume:
                    upcoming[anchor] = data.find(anchor, resume)
        return out, position


def mask_all(data: bytes, secrets: Iterable[str | bytes]) -> bytes:
    """One-shot masking of a whole buffer, with the same rule as the streaming masker."""
    masker = StreamMasker(secrets)
    return masker.feed(data) + masker.flush()


# --- what a secret looks like once encoded -----------------------------------------------

_ALNUM = frozenset((string.ascii_letters + string.digits).encode())
_UNRESERVED = _ALNUM | frozenset(b"-._~")  # RFC 3986: never needs encoding
# Percent-encoders differ in what they leave as it is and in how they write a space.
_PERCENT_STYLES: tuple[tuple[frozenset[int], bool], ...] = (
    (_UNRESERVED, False),  # RFC 3986: Python quote(s, safe=""), curl, jq @uri
    (_UNRESERVED | frozenset(b"/"), False),  # Python quote(s): "/" is safe by default
    (_UNRESERVED, True),  # Python quote_plus, Go url.QueryEscape: space as "+"
    (_UNRESERVED | frozenset(b"!'()*"), False),  # JavaScript encodeURIComponent
    (_ALNUM | frozenset(b"*-._"), True),  # HTML forms, URLSearchParams
    (frozenset(), False),  # every byte encoded
)


def _percent(raw: bytes, keep: frozenset[int], space_as_plus: bool, hex_format: str) -> str:
    return "".join(
        chr(byte) if byte in keep
        else "+" if space_as_plus and byte == 0x20
        else "%" + format(byte, hex_format)
        for byte in raw
    )


def _base64_cores(raw: bytes, encode: Callable[[bytes], bytes]) -> set[bytes]:
    """The characters of base64 text that depend on the secret alone, at each alignment.

    Encoded inside longer data, the secret starts 0, 1 or 2 bytes into a 3-byte group: the
    characters covering bits of the data around it vary with that data; the ones in between
    do not. The whole encoding, padded and unpadded, covers the secret encoded on its own.
    """
    whole = encode(raw)
    cores = {whole, whole.rstrip(b"=")}
    bits = 8 * len(raw)
    for shift in range(3):
        encoded = encode(bytes(shift) + raw)
        first = -(-8 * shift // 6)  # the first character with no bit from before the secret
        last = (8 * shift + bits) // 6  # the first with a bit from after it
        cores.add(encoded[first:last])
    return cores


def encoded_forms(secret: str | bytes) -> set[str]:
    """The secret in base64 (standard and URL-safe, padded or not, and the parts of it that
    survive any alignment), hex (lower and upper case) and percent-encoding (common styles,
    lower and upper case hex digits); the secret itself is not included."""
    raw = _as_bytes(secret)
    forms: set[bytes] = set()
    forms |= _base64_cores(raw, base64.b64encode)
    forms |= _base64_cores(raw, base64.urlsafe_b64encode)
    forms |= {raw.hex().encode(), raw.hex().upper().encode()}
    for keep, space_as_plus in _PERCENT_STYLES:
        for hex_format in ("02X", "02x"):
            forms.add(_percent(raw, keep, space_as_plus, hex_format).encode())
    forms.discard(raw)
    forms.discard(b"")
    return {form.decode("ascii") for form in forms}
