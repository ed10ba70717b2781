"""``live-mind`` (``live_mind/commands/``): the listing, the one-line error for an unknown
subcommand, each subcommand's help against its script's, the same records from ``live-mind
run`` as from ``run_solver.py``, the method listing,
the scripts as thin wrappers, and the console script declared (and installed, when it is)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import missing

import run_solver
from live_mind import commands
from live_mind.commands import analyze

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
SCRIPTED = str(Path(__file__).parent / "fixtures" / "scripted_models.toml")
AS_INSTALLED = "import sys; from live_mind.commands import main; sys.exit(main())"
"""What the console script runs (``python -c`` names the program after ``sys.argv[0]`` as an installed script does)."""
WITH_SCRIPT = [name for name, command in commands.COMMANDS.items() if command.script]


def _help(argv: list[str]) -> tuple[str, str]:
    """(usage block, the rest) of ``argv``'s ``--help`` in a fresh process, at a fixed width."""
    done = subprocess.run([sys.executable, *argv, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    usage, _, rest = done.stdout.partition("\n\n")
    return usage, rest


def _doc_of(name: str) -> str:
    """The docstring the subcommand's parser shows (``live-mind analyze-batched`` keeps its own beside ``analyze``)."""
    if name == "analyze-batched":
        return analyze.BATCHED_DOC
    return sys.modules[commands.COMMANDS[name].target.split(":")[0]].__doc__


def test_the_listing_names_every_subcommand_on_one_line_each(capsys):
    assert commands.main(["--help"]) == 0
    listed = capsys.readouterr().out
    assert commands.main([]) == 0 and capsys.readouterr().out == listed
    lines = listed.splitlines()
    for name in ("run", "batch", "live", "serve", "analyze", "compare", "methods", "summarize"):
        assert sum(line.split()[:1] == [name] for line in lines) == 1, name
    assert len([line for line in lines if line.startswith("  ")]) == len(commands.COMMANDS)


@pytest.mark.parametrize("argv", [["nope"], ["--nope"], ["Run", "--help"]])
def test_an_unknown_subcommand_is_one_line_on_stderr_and_exit_2(capsys, argv):
    assert commands.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and repr(argv[0]) in err and "run, batch" in err


def test_every_subcommand_resolves_to_a_main():
    for name in commands.COMMANDS:
        assert callable(commands.resolve(name)), name


@pytest.mark.parametrize("name", WITH_SCRIPT)
def test_each_subcommand_prints_its_scripts_flags(name):
    script = commands.COMMANDS[name].script
    usage, rest = _help(["-c", AS_INSTALLED, name])
    script_usage, script_rest = _help([script])
    assert usage.startswith(f"usage: live-mind {name} [-h]") and script_usage.startswith(f"usage: {script} [-h]")
    assert rest == script_rest  # description and every flag, word for word
    if name != "serve":  # the server's parser has its own description, not serve.py's docstring
        commands.resolve(name)
        assert rest.startswith(_doc_of(name).splitlines()[0]), "the script's docstring is its help text"
    flags = lambda text: sorted(word.strip("[]|,") for word in text.split() if word.startswith(("--", "[--")))  # noqa: E731
    assert flags(usage) == flags(script_usage)


def test_live_mind_run_writes_the_records_run_solver_writes(tmp_path, two_questions):
    """Both on the scripted model under a timing profile, so every time is modelled and the records repeat exactly."""
    argv = ["--models", SCRIPTED, "--model", "scripted-fast", "--use_lm", "--data_path", str(two_questions),
            "--timing", "paper-llama-3-8b"]
    script, command = tmp_path / "script" / "all.json", tmp_path / "command" / "all.json"
    assert run_solver.main([*argv, "--output_file", str(script)]) == 0
    saved = list(sys.argv)
    assert commands.main(["run", *argv, "--output_file", str(command)]) == 0
    assert sys.argv == saved  # the program name is put back
    records = json.loads(script.read_text())
    assert len(records) == 2 and records == json.loads(command.read_text())
    first, second = ({k: v for k, v in json.loads(path.with_suffix(".config.json").read_text()).items() if k != "output_file"}
                     for path in (script, command))
    assert first == second and first["script"] == "time_info"


def test_a_subcommands_exit_status_is_the_scripts(capsys):
    assert commands.main(["analyze", str(ROOT / "no-such-run.json"), "--no_figures"]) == 2
    assert "no-such-run.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        commands.main(["run", "--no-such-flag"])
    assert stopped.value.code == 2


def test_methods_lists_every_registered_method(capsys):
    from live_mind.methods.registry import REGISTRY

    assert commands.main(["methods"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()] == list(REGISTRY)


@pytest.mark.parametrize("name", [n for n in WITH_SCRIPT if n != "serve"])  # serve.py's text is not the server's help
def test_each_script_is_a_thin_wrapper_with_its_docstring(name):
    command = commands.COMMANDS[name]
    module, function = command.target.split(":")
    tree = ast.parse((ROOT / command.script).read_text(encoding="utf-8"))
    imported = {(node.module, alias.name, alias.asname or alias.name) for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert (module, function, "main") in imported
    assert sum(isinstance(node, (ast.FunctionDef, ast.ClassDef)) for node in tree.body) == 0
    commands.resolve(name)
    doc = ast.get_docstring(tree, clean=False)  # the first line, and where the whole description lives
    assert doc.splitlines()[0] == _doc_of(name).strip().splitlines()[0] and f"``{module.replace('.', '/')}.py``" in doc


def test_no_benchmark_or_helper_script_imports_a_top_level_script():
    scripts = {path.stem for path in ROOT.glob("*.py")}
    found = []
    for path in [*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [f"{path.name}: {name}" for name in names if name and name.split(".")[0] in scripts]
    assert not found


def test_the_console_script_is_declared_and_installed():
    with open(ROOT / "pyproject.toml", "rb") as handle:
        declared = tomllib.load(handle)["project"]["scripts"]
    assert declared == {"live-mind": "live_mind.commands:main"}
    installed = Path(sys.executable).parent / "live-mind"
    found = str(installed) if installed.is_file() else shutil.which("live-mind")
    if found is None:
        missing("the live-mind command is not installed: pip install -e . puts it beside python")
    done = subprocess.run([found, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "methods" in done.stdout, done.stderr
