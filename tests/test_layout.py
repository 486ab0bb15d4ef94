"""The tree shows the architecture: rooms with one job each, imports pointing one way,
small modules, Redis opened in one place, every error code defined once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ielts_service"
# A room may import from the rooms listed after it, never from those before it.
ROOMS = ["api", "guards", "questions", "llm", "state", "observability"]
TOP = {"config", "deadline", "errors"}  # shared by every room, importing none of them
# The wiring (app, services, cli) imports every room; of the rooms, only the HTTP ones
# (api, guards) reach the running app's services.
HTTP_ROOMS = {"api", "guards"}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("ielts_service.")}


def room_of(module: str) -> str:
    return module.split(".")[1]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path):
    here = path.relative_to(PACKAGE).parts
    if len(here) == 1 or here[0] in TOP:  # config is a package of its own
        if path.stem in TOP or here[0] in TOP:
            assert not {room_of(m) for m in imported(path)} & set(ROOMS), path
        return
    room = here[0]
    allowed = set(ROOMS[ROOMS.index(room):]) | TOP | ({"services"} if room in HTTP_ROOMS else set())
    wrong = {m for m in imported(path) if room_of(m) not in allowed}
    assert not wrong, f"{path.relative_to(PACKAGE)} ({room}) imports {sorted(wrong)}"


def test_no_module_over_300_lines_and_no_package_over_10_modules():
    long = [str(p.relative_to(PACKAGE)) for p in modules() if len(p.read_text().splitlines()) > 300]
    crowded = [str(d.relative_to(PACKAGE)) for d in PACKAGE.rglob("*")
               if d.is_dir() and len(list(d.glob("*.py"))) > 10]
    assert long == [] and crowded == []


def test_redis_is_opened_in_one_module():
    opens = re.compile(r"\.from_url\(|RedisCluster\(|Sentinel\(|ConnectionPool\(|aioredis\.Redis\(")
    openers = {str(p.relative_to(PACKAGE)) for p in modules() if opens.search(p.read_text())}
    assert openers == {"state/redis.py"}


def test_every_error_code_is_defined_once_and_used_from_the_table():
    from ielts_service.errors import TABLE

    codes = [entry.code for entry in TABLE]
    assert len(codes) == len(set(codes))
    # Nowhere else is an APIError built from a bare status: codes come from the table.
    bare = [str(p.relative_to(PACKAGE)) for p in modules()
            if re.search(r"APIError\(\s*\d{3}", p.read_text())]
    assert bare == []
