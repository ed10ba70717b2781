"""Skips that CI cannot miss: every skip for a missing engine, extra, model, browser or
shared data goes through ``conftest.missing`` (or ``require_module``, built on it), which
fails the test instead under ``$LIVEMIND_REQUIRE_ENGINES``.  A plain ``pytest.skip``,
``importorskip`` or ``skipif`` in a test file would skip even there, so none may exist
outside conftest.py (``conftest.other_platform`` is the one skip for an operating system
that lacks something, which no install can fix)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import conftest
import pytest

TESTS = Path(__file__).resolve().parent
STRAY = re.compile(r"pytest\.skip\s*\(|importorskip\s*\(|skipif|mark\.skip\b|unittest\.skip")


def strays(folder: Path) -> list[str]:
    """``file:line: text`` of every skip in ``folder``'s test files that bypasses conftest."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        if path.name == "conftest.py" or path == Path(__file__):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if STRAY.search(line.split("#", 1)[0]):
                found.append(f"{path.name}:{number}: {line.strip()}")
    return found


def test_no_test_file_skips_around_the_helper():
    assert strays(TESTS) == []


@pytest.mark.parametrize("line", ['    pytest.skip("no openai")', 'pytest.importorskip("openai")',
                                  '@pytest.mark.skipif(True, reason="x")', "@pytest.mark.skip", "x = mod.importorskip ('a')"])
def test_the_grep_finds_each_kind_of_stray(tmp_path, line):
    (tmp_path / "test_x.py").write_text(f"import pytest\n{line}\n")
    assert strays(tmp_path) == [f"test_x.py:2: {line.strip()}"]


def test_the_helper_fails_under_the_variable_and_skips_without_it(monkeypatch):
    monkeypatch.delenv(conftest.REQUIRE_ENV, raising=False)
    monkeypatch.delenv("LIVEMIND_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        conftest.missing("openai is not installed")
    with pytest.raises(pytest.skip.Exception):
        conftest.require_module("no_such_module_here", "not installed")
    monkeypatch.setenv(conftest.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="openai is not installed"):
        conftest.missing("openai is not installed")
    with pytest.raises(pytest.fail.Exception, match="not installed: ModuleNotFoundError"):
        conftest.require_module("no_such_module_here", "not installed")


def test_a_missing_openai_fails_test_affinity_under_the_variable(tmp_path):
    """The case that slipped through: ``test_affinity.py`` with openai unimportable gave
    "passed, skipped" under the variable.  Now its stub fixture fails instead."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['openai'] = None  # import openai: ImportError\n")
    env = {"PYTHONPATH": f"{tmp_path}:{TESTS.parent}", conftest.REQUIRE_ENV: "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           str(TESTS / "test_affinity.py")], cwd=TESTS.parent, capture_output=True, text=True,
                          timeout=300, env=env)
    tail = done.stdout.strip().splitlines()[-1]
    assert "skipped" not in tail and ("failed" in tail or "error" in tail), done.stdout[-2000:]
