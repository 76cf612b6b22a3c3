"""The line format of the audit trail and the hash that chains its lines.

A line is the record's canonical JSON (keys sorted, compact separators, UTF-8) and `\\n`.
Its `hash` is the SHA-256 of the same canonical JSON without the `hash` member, and its
`prev` is the previous line's `hash` (the first line's is GENESIS).

The keys of a record sort as actor, data, hash, prev, run, seq, step, ts, type: `hash` always
has `data` before it and `prev` right after it. Every member after `hash` is a string or an
integer, and inside a JSON string every `"` is escaped, so the last `,"hash":"` of a line is
always the record's own. Removing that member's bytes from the line gives exactly the bytes
that were hashed, which lets the verifier check a line without parsing or re-serialising it.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from _json import make_encoder
from collections.abc import Mapping
from typing import Any

from console.errors import AuditError, UsageError
from console.timestamps import utc_now

GENESIS = "0" * 64
HASH_LENGTH = 64

HASH_MEMBER = b',"hash":"'
PREV_MEMBER = b',"prev":"'
SEQ_MEMBER = b',"seq":'
# `,"hash":"` + 64 hex digits + `"`
_HASH_MEMBER_LENGTH = len(HASH_MEMBER) + HASH_LENGTH + 1
_HASH_VALUE_OFFSET = len(HASH_MEMBER)
_PREV_VALUE_OFFSET = len(PREV_MEMBER)
_QUOTE = ord('"')

_ENTRY_KEYS = frozenset({"run", "type", "ts", "data", "step", "actor"})


# What the verifier needs from a line whose hash matches its content: (seq, hash, prev), the
# hashes as 64 lowercase hex digits in ASCII bytes. A plain tuple: this is made once per line.
LineFacts = tuple[int, bytes, bytes]


def format_head(seq: int, digest: str) -> str:
    """The chain's head as people keep it: SEQ:HASH."""
    return f"{seq}:{digest}"


def parse_head(text: str) -> tuple[int, str]:
    """SEQ:HASH (as `console audit head` prints it) -> (seq, hash)."""
    seq, _, digest = text.strip().partition(":")
    digest = digest.lower()
    well_formed = seq.isascii() and seq.isdigit() and len(digest) == HASH_LENGTH
    if not well_formed or digest.strip("0123456789abcdef"):
        raise UsageError(
            f"--head {text!r} is not SEQ:HASH — pass the line `console audit head` printed: "
            "a number, a colon and 64 hex digits"
        )
    return int(seq), digest


# Made once: json.dumps with options builds a new encoder on every call, and this is on the
# engine's per-event path. JSONEncoder.encode itself still builds the C encoder (and a Python
# closure) on every call, ~2/3 of the time it takes for an event: the C encoder is made once
# here, with the same options (no circular check: a record is a tree of plain values).
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_ASCII_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)
_C_ENCODERS = (
    make_encoder(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",",
                 True, False, False),
    make_encoder(None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",",
                 True, False, False),
)


def canonical_json(value: Any, *, ascii_only: bool = False) -> str:
    """Keys sorted, no spaces, UTF-8 text (or \\u escapes with ascii_only), no NaN."""
    if isinstance(value, dict):
        return "".join(_C_ENCODERS[ascii_only](value, 0))
    return (_ASCII_ENCODER if ascii_only else _ENCODER).encode(value)


def entry_body(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The record's members that come from the event: run, type, ts, data, step?, actor?."""
    unknown = entry.keys() - _ENTRY_KEYS
    if unknown:
        raise AuditError(
            f"audit entry has unexpected keys {sorted(unknown)}: an entry is an event's "
            "to_json() (run, type, ts, data, step, actor)"
        )
    run = entry.get("run")
    kind = entry.get("type")
    data = entry.get("data")
    if not isinstance(run, str) or not isinstance(kind, str) or not kind:
        raise AuditError(f"audit entry needs a string run and type, got run={run!r} type={kind!r}")
    if not isinstance(data, dict):
        if not isinstance(data, Mapping):
            raise AuditError(
                f"audit entry {kind!r} needs a data object, got {type(data).__name__}"
            )
        data = dict(data)
    ts = entry.get("ts") or utc_now()
    step = entry.get("step")
    # Members that sort after `hash` must be strings or numbers (see the module's docstring).
    if not isinstance(ts, str) or not isinstance(step, str | None):
        raise AuditError(
            f"audit entry {kind!r} needs a string ts and step, got ts={ts!r} step={step!r}"
        )
    body: dict[str, Any] = {"run": run, "type": kind, "ts": ts, "data": data}
    if step is not None:
        body["step"] = step
    actor = entry.get("actor")
    if actor is not None:
        body["actor"] = actor
    return body


def seal(body: dict[str, Any], seq: int, prev: str) -> tuple[dict[str, Any], bytes]:
    """Give `body` its place in the chain: the full record and its line, newline included."""
    record = {**body, "seq": seq, "prev": prev}
    unhashed = _unhashed_bytes(record)
    digest = hashlib.sha256(unhashed).hexdigest()
    cut = unhashed.rindex(PREV_MEMBER)
    member = HASH_MEMBER + digest.encode("ascii") + b'"'
    line = b"".join((unhashed[:cut], member, unhashed[cut:], b"\n"))
    record["hash"] = digest
    return record, line


def record_hash(record: Mapping[str, Any]) -> str:
    """The hash a record's line must carry (for records already parsed, not raw lines)."""
    unhashed = _unhashed_bytes({key: value for key, value in record.items() if key != "hash"})
    return hashlib.sha256(unhashed).hexdigest()


def _unhashed_bytes(record: Mapping[str, Any]) -> bytes:
    """The canonical JSON of a record without its hash: the bytes the hash covers."""
    try:
        return canonical_json(record).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot be written as UTF-8; \u escapes keep it, and the line valid.
        return canonical_json(record, ascii_only=True).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise AuditError(
            f"audit entry {record.get('type')!r} cannot be written as JSON ({exc}); "
            "event data must be strings, numbers, booleans, null, lists and objects"
        ) from exc


def inspect_line(line: bytes) -> LineFacts | None:
    """The line's (seq, hash, prev) if its hash matches its content; None otherwise.

    `line` is without its newline. None means the line is not one a writer produced
    unchanged; `diagnose` in verify.py says how.
    """
    return inspect_span(line, memoryview(line), 0, len(line))


def inspect_span(buf: bytes, view: memoryview, start: int, stop: int) -> LineFacts | None:
    """`inspect_line` for the line `buf[start:stop]`, without copying it out of `buf`.

    `view` is memoryview(buf). The verifier calls this once per line of a large file, so it
    hashes views and compares in place rather than slicing the line apart.
    """
    at = buf.rfind(HASH_MEMBER, start, stop)
    end = at + _HASH_MEMBER_LENGTH
    prev_end = end + _PREV_VALUE_OFFSET + HASH_LENGTH
    if at <= start or stop <= prev_end:
        return None
    digest = hashlib.sha256(view[start:at])
    digest.update(view[end:stop])
    stored = buf[at + _HASH_VALUE_OFFSET : end - 1]
    # The hash member is the only part of the line the digest does not cover: check it whole.
    if buf[end - 1] != _QUOTE or digest.hexdigest().encode("ascii") != stored:
        return None
    if not buf.startswith(PREV_MEMBER, end) or buf[prev_end] != _QUOTE:
        return None
    seq_at = buf.find(SEQ_MEMBER, prev_end, stop)
    seq_end = buf.find(b",", seq_at + len(SEQ_MEMBER), stop)
    if seq_at < 0 or seq_end < 0:
        return None
    try:
        seq = int(buf[seq_at + len(SEQ_MEMBER) : seq_end])
    except ValueError:
        return None
    return seq, stored, buf[end + _PREV_VALUE_OFFSET : prev_end]
