"""The streaming masker: chunked output masks exactly as a one-shot scan of the whole stream."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from urllib.parse import quote, quote_from_bytes, quote_plus, unquote_to_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.exec.masking import MASK, StreamMasker, encoded_forms, mask_all

from .conftest import PY, Runner


def reference_mask(data: bytes, secrets: list[bytes]) -> bytes:
    """The rule, written plainly: at each byte the longest secret starting there is masked."""
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    out = bytearray()
    position = 0
    while position < len(data):
        for secret in ordered:
            if data.startswith(secret, position):
                out += MASK
                position += len(secret)
                break
        else:
            out.append(data[position])
            position += 1
    return bytes(out)


def stream(masker: StreamMasker, chunks: list[bytes]) -> bytes:
    return b"".join(masker.feed(chunk) for chunk in chunks) + masker.flush()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


def test_a_secret_in_one_chunk_is_masked() -> None:
    assert mask_all(b"token=hunter22;", ["hunter22"]) == b"token=***;"


def test_a_secret_split_across_chunks_is_masked() -> None:
    masker = StreamMasker(["hunter22"])
    assert stream(masker, [b"token=hun", b"te", b"r22; done"]) == b"token=***; done"


def test_a_secret_split_one_byte_per_chunk_is_masked() -> None:
    data = b"a hunter22 b hunter22"
    masker = StreamMasker(["hunter22"])
    assert stream(masker, [bytes([b]) for b in data]) == b"a *** b ***"


def test_a_multi_line_secret_is_masked() -> None:
    key = "-----BEGIN KEY-----\nabc\ndef\n-----END KEY-----"
    masker = StreamMasker([key])
    chunks = [b"before\n-----BEGIN KEY-----\nab", b"c\ndef\n-----END KEY-----\nafter\n"]
    out = stream(masker, chunks)
    assert out == b"before\n***\nafter\n"


def test_the_longer_of_two_secrets_at_the_same_place_wins() -> None:
    assert mask_all(b"x=abcdefgh", ["abcd", "abcdefgh"]) == b"x=***"
    assert mask_all(b"x=abcdefgX", ["abcd", "abcdefgh"]) == b"x=***efgX"


def test_a_short_secret_waits_while_a_longer_one_may_still_complete() -> None:
    masker = StreamMasker(["abcd", "abcdefgh"])
    assert stream(masker, [b"abcdabcdefg", b"h"]) == b"******"


def test_str_secrets_are_matched_as_utf8() -> None:
    assert mask_all("pass: żółw-1234\n".encode(), ["żółw-1234"]) == b"pass: ***\n"


def test_no_secrets_passes_chunks_through_untouched() -> None:
    masker = StreamMasker([])
    chunk = b"x" * 100
    assert not masker.active
    assert masker.feed(chunk) is chunk
    assert masker.flush() == b""


def test_a_partial_secret_at_the_end_of_the_stream_is_kept() -> None:
    masker = StreamMasker(["hunter22"])
    assert stream(masker, [b"ends with hunter2"]) == b"ends with hunter2"


def test_the_masker_holds_back_only_what_may_start_a_secret() -> None:
    masker = StreamMasker(["abcd", "abcdefgh"])
    assert masker.feed(b"progress 10%\n") == b"progress 10%\n"
    assert masker.feed(b"0123456abcdefg") == b"0123456"
    assert masker.flush() == b"***efg"


@settings(max_examples=400, deadline=None)
@given(
    data=st.binary(max_size=300).map(lambda b: bytes(97 + x % 3 for x in b)),
    secrets=st.lists(
        st.binary(min_size=1, max_size=6).map(lambda b: bytes(97 + x % 3 for x in b)),
        min_size=1,
        max_size=4,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_chunked_masking_equals_one_shot_masking(
    data: bytes, secrets: list[bytes], cuts: list[int]
) -> None:
    # A three-letter alphabet makes secrets, overlaps and near misses common.
    expected = reference_mask(data, secrets)
    assert stream(StreamMasker(secrets), split_at(data, cuts)) == expected
    assert mask_all(data, secrets) == expected


@settings(max_examples=100, deadline=None)
@given(
    data=st.binary(max_size=2000),
    secrets=st.lists(st.binary(min_size=4, max_size=40), min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_chunked_masking_of_arbitrary_bytes_equals_one_shot_masking(
    data: bytes, secrets: list[bytes], cuts: list[int]
) -> None:
    planted = secrets[0].join([data[:500], data[500:1500], data[1500:]])
    assert stream(StreamMasker(secrets), split_at(planted, cuts)) == reference_mask(
        planted, secrets
    )


# --- encoded forms: base64, hex, percent-encoding ------------------------------------------

SECRET = "hunter2/very+secret?"


def masked_with_forms(data: bytes, secret: str | bytes = SECRET) -> bytes:
    return mask_all(data, [secret, *encoded_forms(secret)])


def b64_runs(text: bytes) -> list[bytes]:
    return re.findall(rb"[A-Za-z0-9+/_-]+", text)


def recoverable(secret: bytes, output: bytes) -> list[str]:
    """How `secret` can still be read from `output`: as written, or by decoding base64 (at
    every alignment), hex or percent-encoding. The oracle knows nothing of the masker."""
    found = ["as written"] if secret in output else []
    for run in b64_runs(output):
        standard = run.translate(bytes.maketrans(b"-_", b"+/"))
        for skip in range(4):
            piece = standard[skip:]
            piece = piece[: len(piece) - (len(piece) % 4 == 1)]
            if secret in base64.b64decode(piece + b"=" * (-len(piece) % 4)):
                found.append(f"base64 {run!r}")
    for run in re.findall(rb"[0-9a-fA-F]+", output):
        for skip in range(2):
            piece = run[skip:]
            if secret in bytes.fromhex(piece[: len(piece) // 2 * 2].decode()):
                found.append(f"hex {run!r}")
    for decoded in (unquote_to_bytes(output), unquote_to_bytes(output.replace(b"+", b" "))):
        if secret in decoded:
            found.append("percent-encoding")
    return found


def test_base64_of_the_secret_alone_is_masked_whole() -> None:
    raw = SECRET.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        padded = encode(raw)
        assert padded.endswith(b"=")
        assert masked_with_forms(b"[" + padded + b"]") == b"[***]"
        assert masked_with_forms(b"[" + padded.rstrip(b"=") + b"]") == b"[***]"


@pytest.mark.parametrize("shift", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode],
                         ids=["standard", "urlsafe"])
def test_base64_of_longer_data_is_masked_at_every_alignment(
    shift: int, encode: Callable[[bytes], bytes]
) -> None:
    blob = encode(b"k" * shift + f'{{"token": "{SECRET}"}}'.encode())
    out = masked_with_forms(blob)
    assert out.count(MASK) == 1
    assert recoverable(SECRET.encode(), out) == []
    # Only the characters that mix the secret with the data around it are left.
    assert len(blob) - len(out) + len(MASK) >= len(SECRET) * 4 // 3 - 2


def test_hex_in_either_case_is_masked() -> None:
    raw = SECRET.encode()
    assert masked_with_forms(b"x=" + raw.hex().encode() + b";") == b"x=***;"
    assert masked_with_forms(b"x=" + raw.hex().upper().encode() + b";") == b"x=***;"
    # Inside a longer hex dump, at an odd or even offset.
    for before in (b"a", b"ab", b"abc"):
        dump = (before + raw + b"zz").hex().encode()
        assert recoverable(raw, masked_with_forms(dump)) == []


@pytest.mark.parametrize("encode", [
    lambda s: quote(s, safe=""),
    quote,
    lambda s: quote_plus(s, safe=""),
    lambda s: quote(s, safe="!'()*"),
    lambda s: quote_plus(s, safe="*").replace("~", "%7E"),
    lambda s: "".join(f"%{b:02x}" for b in s.encode()),
], ids=["rfc3986", "python-quote", "quote-plus", "encodeURIComponent", "form", "every-byte"])
def test_percent_encoding_in_the_usual_styles_is_masked(encode: Callable[[str], str]) -> None:
    secret = "p@ss w/rd~!*(x)ż"
    for form in (encode(secret), re.sub("%..", lambda m: m.group(0).lower(), encode(secret))):
        assert form != secret
        out = masked_with_forms(f"https://h/?a=1&pw={form}&b=2".encode(), secret)
        assert out == b"https://h/?a=1&pw=***&b=2", form


def test_forms_split_across_reads_are_masked() -> None:
    raw = SECRET.encode()
    text = b" ".join([base64.b64encode(b"ab" + raw), raw.hex().encode(),
                      quote(SECRET, safe="").encode(), b"end"])
    masker = StreamMasker([SECRET, *encoded_forms(SECRET)])
    out = stream(masker, [bytes([b]) for b in text])
    assert out == masked_with_forms(text)
    assert out.count(MASK) == 3
    assert recoverable(raw, out) == []


def test_the_secret_itself_is_not_among_its_encoded_forms() -> None:
    assert "hunter22" not in encoded_forms("hunter22")
    assert all(form.isascii() for form in encoded_forms("żółw-1234"))


no_newline_or_star = st.binary(min_size=4, max_size=40).filter(
    lambda b: b"\n" not in b and b"*" not in b)
ENCODERS: list[Callable[[bytes], bytes]] = [
    base64.b64encode,
    lambda b: base64.b64encode(b).rstrip(b"="),
    base64.urlsafe_b64encode,
    lambda b: base64.urlsafe_b64encode(b).rstrip(b"="),
    lambda b: b.hex().encode(),
    lambda b: b.hex().upper().encode(),
    lambda b: quote_from_bytes(b, safe="").encode(),
    lambda b: re.sub("%..", lambda m: m.group(0).lower(), quote_from_bytes(b, safe="")).encode(),
    lambda b: quote_from_bytes(b).encode(),
    lambda b: quote_from_bytes(b, safe="!'()*").encode(),
    lambda b: quote_from_bytes(b, safe=" ").replace(" ", "+").encode(),
]


@settings(max_examples=300, deadline=None)
@given(
    secret=no_newline_or_star | st.text(min_size=4, max_size=20).map(str.encode).filter(
        lambda b: b"\n" not in b and b"*" not in b),
    before=st.binary(max_size=7),
    after=st.binary(max_size=7),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
)
def test_no_encoding_of_a_secret_survives_any_chunking(
    secret: bytes, before: bytes, after: bytes, cuts: list[int]
) -> None:
    # One line per encoding of (before + secret + after), so every alignment comes up.
    lines = [encode(before + secret + after) for encode in ENCODERS]
    assert all(recoverable(secret, line) for line in lines)  # the oracle sees them unmasked
    data = b"\n".join([*lines, before + secret + after])
    forms = [secret, *encoded_forms(secret)]
    out = stream(StreamMasker(forms), split_at(data, cuts))
    assert out == reference_mask(data, [f.encode() for f in forms[1:]] + [secret])
    assert secret not in out
    for line in out.split(b"\n")[: len(lines)]:
        assert recoverable(secret, line) == [], line


# --- real steps ----------------------------------------------------------------------------

PRINTER = r"""
import base64, os, re, sys, time
from urllib.parse import quote, quote_plus

secret = os.environ[sys.argv[1]].encode()
out = sys.stdout.buffer


def emit(label, text):
    # In three writes with pauses, so the pipe hands the line over in separate reads.
    third = max(1, len(text) // 3)
    for piece in (label + b" " + text[:third], text[third:2 * third], text[2 * third:] + b"\n"):
        out.write(piece)
        out.flush()
        time.sleep(0.01)


for shift in range(3):
    blob = b"<" * shift + secret + b">"
    emit(b"b64", base64.b64encode(blob))
    emit(b"b64-nopad", base64.b64encode(blob).rstrip(b"="))
    emit(b"b64url", base64.urlsafe_b64encode(blob))
    emit(b"hex", blob.hex().encode())
    emit(b"HEX", blob.hex().upper().encode())
emit(b"b64-alone", base64.b64encode(secret))
emit(b"url", quote(secret, safe="").encode())
emit(b"url-plus", quote_plus(secret, safe="").encode())
emit(b"url-lower", re.sub(b"%..", lambda m: m.group(0).lower(), quote(secret, safe="").encode()))
emit(b"plain", secret)
"""


def printed_lines(log: bytes) -> dict[bytes, list[bytes]]:
    lines: dict[bytes, list[bytes]] = {}
    for line in log.splitlines():
        label, _, text = line.partition(b" ")
        lines.setdefault(label, []).append(text)
    return lines


def test_a_real_step_printing_encoded_secrets_leaves_none_in_the_log(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "tok/3n+Very-Secret?ß x"
    monkeypatch.setenv("DEPLOY_TOKEN", token)
    (runner.tmp_path / "printer.py").write_text(PRINTER)
    outcome, engine, _ = runner.run(f"""
        [workflow]
        name = "encodings"
        [params]
        password = {{ type = "string", secret = true }}
        [steps.env-secret]
        run = ["{PY}", "printer.py", "TOKEN"]
        env = {{ TOKEN = "${{secret:DEPLOY_TOKEN}}" }}
        [steps.param-secret]
        run = ["{PY}", "printer.py", "PARAM_PASSWORD"]
        """, params={"password": "correct horse/battery+staple"})
    assert outcome == "succeeded"
    for step, secret in (("env-secret", token), ("param-secret", "correct horse/battery+staple")):
        log = Path(engine.state.steps[step].log_path or "").read_bytes()
        lines = printed_lines(log)
        assert len(lines) == 10 and sum(map(len, lines.values())) == 20, log
        assert all(MASK in text for texts in lines.values() for text in texts), log
        for texts in lines.values():
            for text in texts:
                assert recoverable(secret.encode(), text) == [], text
        assert not any(form.encode() in log for form in encoded_forms(secret))
    audit = engine.settings.audit_path.read_bytes()
    assert token.encode() not in audit and b"battery" not in audit


def test_a_short_secret_param_is_masked_only_as_written(runner: Runner) -> None:
    (runner.tmp_path / "printer.py").write_text(PRINTER)
    outcome, engine, _ = runner.run(f"""
        [workflow]
        name = "short"
        [params]
        pin = {{ type = "string", secret = true }}
        [steps.print]
        run = ["{PY}", "printer.py", "PARAM_PIN"]
        """, params={"pin": "k9$"})
    assert outcome == "succeeded"
    lines = printed_lines(Path(engine.state.steps["print"].log_path or "").read_bytes())
    assert lines[b"plain"] == [MASK]
    assert lines[b"hex"][0] == b"k9$>".hex().encode()  # too short to mask encoded
