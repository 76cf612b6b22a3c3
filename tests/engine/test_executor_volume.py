"""200 MB of output on one line: written through, hashed as written, never held in memory."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

SIZE = 200_000_000

# Run in a fresh interpreter, so the peak RSS measured is the executor's, not pytest's.
DRIVER = """
import asyncio, json, os, sys
from pathlib import Path
from console.exec.local import LocalExecutor, StepCommand

def peak_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

async def main():
    log_path, size, secret = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    executor = LocalExecutor(grace_s=1.0)
    await executor.run(StepCommand("warm-up", 1, ("true",), None, dict(os.environ),
                                   Path.cwd(), None, log_path.with_suffix(".warm")))
    before = peak_kib()
    result = await executor.run(StepCommand(
        "flood", 1, ("head", "-c", str(size), "/dev/zero"), None, dict(os.environ),
        Path.cwd(), 120.0, log_path, (secret,) if secret else ()))
    after = peak_kib()
    await executor.shutdown()
    print(json.dumps({"outcome": result.outcome, "size": result.log_size,
                      "sha256": result.log_sha256, "peak_before_kib": before,
                      "peak_after_kib": after}))

asyncio.run(main())
"""


def zeros_sha256(size: int) -> str:
    digest = hashlib.sha256()
    block = bytes(1 << 20)
    for _ in range(size // len(block)):
        digest.update(block)
    digest.update(bytes(size % len(block)))
    return digest.hexdigest()


@pytest.mark.parametrize("secret", ["", "s3cr3t-value"], ids=["plain", "masking"])
def test_200_mb_without_a_newline_streams_to_the_log(tmp_path: Path, secret: str) -> None:
    log_path = tmp_path / "logs" / "flood.log"
    finished = subprocess.run(
        [sys.executable, "-c", DRIVER, str(log_path), str(SIZE), secret],
        capture_output=True,
        text=True,
        timeout=110,
        check=True,
    )
    report = json.loads(finished.stdout)
    assert report["outcome"] == "succeeded"
    assert report["size"] == SIZE == log_path.stat().st_size
    assert report["sha256"] == zeros_sha256(SIZE)
    growth_mib = (report["peak_after_kib"] - report["peak_before_kib"]) / 1024
    print(f"peak RSS growth over {SIZE // 1_000_000} MB of output: {growth_mib:.1f} MiB")
    assert growth_mib < 32
