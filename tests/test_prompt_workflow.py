"""The prompt editor's workflow: lint, render, try, and edits picked up by a running server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ielts_service.cli import main
from tests.conftest import azure_env
from tests.support import fake_model as fm
from tests.support.process import ROOT, base_env


@pytest.fixture
def prompts_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    return tmp_path / "prompts"


def test_lint_passes_on_the_shipped_prompts(capsys):
    assert main(["prompts", "lint", "--dir", str(ROOT / "prompts")]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok p") == 3


def test_lint_fails_with_file_and_line_on_a_broken_copy(prompts_copy, capsys):
    text = (prompts_copy / "part2.txt").read_text()
    (prompts_copy / "part2.txt").write_text(text.replace("{{ count }}", "{{ cuont }}", 1))
    assert main(["prompts", "lint", "--dir", str(prompts_copy)]) == 1
    err = capsys.readouterr().err
    assert f"{prompts_copy / 'part2.txt'}:7: unknown placeholder {{{{ cuont }}}}" in err


@pytest.mark.parametrize(("typed", "sent"), [("Travelling!", "travel and holidays"),
                                             ("My favourite teacher", "favourite teacher")])
def test_render_prints_exactly_what_would_be_sent(capsys, typed, sent):
    """The topic as the service sends it: an area's name for a phrasing of the area, the
    student's own (normalised) words for anything more specific."""
    assert main(["prompts", "render", "2", "--topic", typed, "--dir", str(ROOT / "prompts")]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["response_format"]["json_schema"]["name"] == "ielts_part2"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"].endswith(f'Topic: "{sent}"')
    assert body["max_tokens"] == 1500 and body["temperature"] == 0.9


def test_try_calls_the_model_and_shows_kept_and_rejected_items(fake_model, tmp_path):
    fake_model.enqueue(fm.ok(fm.valid_items(3, 2) + fm.invalid_items(3)))
    result = subprocess.run(
        [sys.executable, "-m", "ielts_service", "prompts", "try", "3", "--topic", "rivers"],
        cwd=tmp_path, env=base_env(**azure_env(fake_model)), capture_output=True, text=True,
        timeout=60)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert len(shown["items"]) == 2 and len(shown["rejected"]) == len(fm.invalid_items(3))
    assert any("personal" in reason for reason in shown["rejected"])
    assert len(fake_model.requests) == 1


def wait_for(condition, timeout: float = 30.0):
    """Poll `condition` until it returns something truthy, or fail at the (generous) deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met within the deadline")


@pytest.mark.e2e
def test_an_edit_is_served_without_a_restart_and_a_broken_edit_is_refused(
    serve, fake_model, prompts_copy
):
    server = serve(**azure_env(fake_model, PROMPTS_DIR=str(prompts_copy), LOG_FORMAT="json",
                               PROMPTS_RELOAD_SECONDS="0.2"))

    def version() -> str:
        reply = httpx.post(server.url + "/generate-question", json={"topic": "gardens"},
                           timeout=30).json()
        return reply["data"]["prompt_version"]

    first = version()
    part2 = prompts_copy / "part2.txt"
    part2.write_text(part2.read_text().replace("temperature: 0.9", "temperature: 0.6"))
    second = wait_for(lambda: (v := version()) != first and v)
    assert fake_model.requests[-1].body["temperature"] == 0.6

    part2.write_text(part2.read_text().replace("{{ topic }}", "{% if %}"))
    ready = wait_for(lambda: (r := httpx.get(server.url + "/health/ready", timeout=30))
                     .json()["data"]["checks"]["prompts"]["reload_failed"] and r)
    assert "part2.txt" not in ready.text  # readiness says only that it failed
    assert version() == second  # the last good version keeps serving
    failures = [json.loads(line) for line in server.stop() if "prompts_reload_failed" in line]
    assert failures and any("part2.txt:" in p for p in failures[0]["problems"])
