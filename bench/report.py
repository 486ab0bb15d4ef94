"""The machine the figures came from, and the markdown report."""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import wrk

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ielts-service", "quart", "hypercorn", "h11", "openai", "httpx", "redis", "hiredis",
            "structlog", "prometheus-client", "pydantic", "quart-rate-limiter", "tenacity")


def _run(*cmd: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=ROOT)
        return out.stdout.rstrip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_digest() -> str:
    """A hash of the code under test, to notice an edit landing in the middle of a run."""
    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("ielts_service/**/*.py"), *ROOT.glob("prompts/*"),
                        ROOT / "hypercorn.toml"]):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:12]


def machine() -> list[tuple[str, str]]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), "unknown")
    mem = next((line.split(":", 1)[1].strip() for line in Path("/proc/meminfo").read_text()
                .splitlines() if line.startswith("MemTotal")), "unknown")
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    dirty = _run("git", "status", "--porcelain", "--", "ielts_service", "prompts",
                 "hypercorn.toml").splitlines()
    commit = _run("git", "rev-parse", "--short", "HEAD") or "unknown"
    return [
        ("date (UTC)", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")),
        ("nproc", _run("nproc").strip() or str(os.cpu_count())),
        ("CPU model", cpu),
        ("memory", mem),
        ("kernel", platform.release()),
        ("Python", sys.version.split()[0]),
        ("packages", ", ".join(versions)),
        ("redis-server", _run("redis-server", "--version").split(" sha=")[0] or "unknown"),
        ("load generator", wrk.wrk_version() if wrk.wrk_path()
         else "wrk not installed: Python asyncio raw-socket keep-alive client"),
        ("code measured", f"commit {commit}" + (
            f", plus uncommitted changes in {len(dirty)} file(s): "
            + ", ".join(line[3:] for line in dirty) if dirty else ", clean tree")
         + f" (digest {code_digest()})"),
    ]


def verdict(ok: bool | None) -> str:
    return "INFO" if ok is None else ("PASS" if ok else "MISS")


def render(rows: list[tuple[str, str, str, bool | None]], sections: list[str],
           machine_rows: list[tuple[str, str]], notes: list[str], runtime_s: float) -> str:
    out = ["# ielts-service benchmark report", "",
           f"Written by `make bench` (`python -m bench`) in {runtime_s:.0f} s. Every figure "
           "below was measured in this one run, on loopback.", "",
           "## Summary", "",
           "| figure | measured | target | result |", "| --- | --- | --- | --- |"]
    out += [f"| {name} | {measured} | {target} | {verdict(ok)} |"
            for name, measured, target, ok in rows]
    out += ["", "## Machine", "", "| | |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in machine_rows]
    out += ["", *sections]
    if notes:
        out += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(out).rstrip() + "\n"


def fmt_counter(counter: Any) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0])))
