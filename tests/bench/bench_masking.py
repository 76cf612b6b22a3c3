"""Masking throughput: StreamMasker over 20 MB of log-like text, in 256 KiB reads (what the
executor reads from a busy pipe) and in 120-byte reads (a step flushing line by line).

Each secret is masked as written and in its encoded forms (base64, hex, percent-encoding),
as a run masks it; "as written" is the same masker given the secrets alone, for comparison.
bench_flood.py's step prints 10 MB/s: the targets keep masking far below that cost.
"""

from __future__ import annotations

import random
import time

from _common import Figure, at_least, median, print_figures, reported, runs_from_argv

from console.exec.masking import StreamMasker, encoded_forms

SECRETS = ["s3cr3t-Flood_Token/42", "hunter2-very-secret", "postgres-pw-Zk9!x"]
BIG_READ = 256 * 1024
SMALL_READ = 120
MIN_BIG_MB_S = 100.0
MIN_SMALL_MB_S = 5.0
WORDS = ["deploy", "INFO", "step", "retry", "12:00:01", "GET", "/api/v1/items", "200", "ok",
         "took", "ms", "user=alice", "id=9f8e7d", "warning:", "the", "of", "and", "-", "|"]


def log_text(size: int) -> bytes:
    rnd = random.Random(1)
    lines: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rnd.choice(WORDS) for _ in range(12)) + "\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def throughput(patterns: list[str], data: bytes, read: int) -> float:
    masker = StreamMasker(patterns)
    start = time.perf_counter()
    for offset in range(0, len(data), read):
        masker.feed(data[offset:offset + read])
    masker.flush()
    return len(data) / (time.perf_counter() - start) / 1e6


def run(runs: int = 5) -> list[Figure]:
    text = log_text(20_000_000)
    figures: list[Figure] = []
    for count in (1, 3):
        secrets = SECRETS[:count]
        forms = [*secrets, *(form for s in secrets for form in encoded_forms(s))]
        for read, data, floor in ((BIG_READ, text, MIN_BIG_MB_S),
                                  (SMALL_READ, text[:2_000_000], MIN_SMALL_MB_S)):
            name = f"masking: {count} secret{'s' if count > 1 else ''}, {read}-byte reads"
            plain = median([throughput(secrets, data, read) for _ in range(runs)])
            encoded = median([throughput(forms, data, read) for _ in range(runs)])
            figures.append(reported(f"{name}, as written", plain, "MB/s"))
            figures.append(at_least(f"{name}, with encodings", encoded, "MB/s", floor,
                                    f"{len(set(forms))} patterns"))
    return figures


if __name__ == "__main__":
    print_figures("masking", run(runs_from_argv()))
