"""The streaming masker: chunked output masks exactly as a one-shot scan of the whole stream."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from console.run.masking import MASK, StreamMasker, mask_all


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
