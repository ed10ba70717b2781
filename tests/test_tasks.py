"""Tasks (live_mind/tasks/): scoring table, task files and their checks, MMLU selection.

The MMLU selection is computed here a second way, with ``datasets`` itself: the
fixture rows written in the cais/mmlu parquet layout, ``Dataset.shuffle(seed=42)`` on
the test split, then each subject's first k rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from live_mind.data import DataError
from live_mind.prompts import PromptSet, cot_messages, load_prompt_set
from live_mind.records import build_record
from live_mind.tasks import texts
from live_mind.tasks.base import TaskError
from live_mind.tasks.resolve import resolve_task
from live_mind.tasks.scoring import extract_free, free_matches, normalise_text, predict

FIXTURES = Path(__file__).resolve().parent / "fixtures"
QUIZ = FIXTURES / "quiz_task.toml"


# ------------------------------------------------------------------ free-form scoring

@pytest.mark.parametrize("prediction, reference, expected", [
    ("1000", "1000", True),
    ("1,000", "1000", True),
    ("1000.0", "1000", True),
    ("$1000", "1000", True),
    ("$1,000.00", "1,000", True),
    ("1000", "$1000", True),
    ("60 eggs", "60", True),
    ("-3", "-3", True),
    ("0.5", ".5", True),
    ("10", "100", False),   # false friends
    ("100", "10", False),
    ("1.5", "15", False),
    ("15", "1.5", False),
    ("1,5", "15", False),
    ("7", "17", False),
    ("seven", "7", False),
    ("Tokyo", "tokyo", True),
    ("  Tokyo ", "Tokyo", True),
    ("the Nile", "Nile", False),
    ("Tokyo", "Kyoto", False),
    ("tokyo", "Tokyo.", True),  # the reference side is normalised too: closing punctuation
    ("new york", " New   York! ", True),  # and inner whitespace collapsed
    ("new york city", "New York", False),
    (None, "7", False),
])
def test_free_form_normalisation(prediction, reference, expected):
    assert free_matches(prediction, reference) is expected


@pytest.mark.parametrize("reply, extracted", [
    ("Three plus four. The answer is 7.", "7"),
    ("So the answer is $1,000. Done.", "$1,000"),
    ("The answer is: **Tokyo**", "Tokyo"),
    ("the answer is \\boxed{42}", "42"),
    ("First the answer is 3. Wait, no: the answer is 4.", "4"),  # the last statement counts
    ("The answer is New York City", "New York City"),  # several words: the rest of the line
    ("The answer is 42\nbecause six times seven is 42", "42"),  # the line ends the answer
    ("No conclusion here.", None),
    ("", None),
])
def test_free_form_extraction(reply, extracted):
    assert extract_free(reply) == extracted


def test_text_normalisation_trims_lower_cases_and_collapses():
    assert normalise_text("  New   York City! ") == "new york city" and normalise_text("TOKYO.") == "tokyo"


@pytest.mark.parametrize("reply", ["None", "XXXX", "0", "nothing"])
def test_a_free_form_row_without_a_reference_scores_nothing_correct(reply):
    assert predict({"answer_kind": "free", "options": []}, f"The answer is {reply}.")[1] is False


def test_letter_past_the_options_is_a_miss_and_mmlu_pro_keeps_the_paper_rule():
    four = {"options": ["a", "b", "c", "d"], "answer": "B", "answer_kind": "letter"}
    assert predict(four, "The answer is (E).") == (None, False)
    assert predict(four, "The answer is (B).") == ("B", True)
    mmlu_pro = {"options": ["a", "b", "c", "d"], "answer": "B"}  # no answer_kind: v1 rule, A-J
    assert predict(mmlu_pro, "The answer is (E).") == ("E", False)
    free = {"options": [], "answer": "1,000", "answer_kind": "free"}
    assert predict(free, "Four times 250. The answer is $1000.") == ("$1000", True)



def test_records_of_mmlu_pro_rows_have_no_task_fields():
    from live_mind.data import load_sample_questions

    row = load_sample_questions()[0]
    record = build_record(row, [], "cot")
    assert "task" not in record and "answer_kind" not in record
    record = build_record({**row, "task": "quiz", "answer_kind": "letter"}, [], "cot")
    assert list(record)[8:10] == ["task", "answer_kind"]


# ------------------------------------------------------------------ prompts

def test_task_prompts_swap_in_and_stay_out_of_the_saved_texts(tmp_path):
    free = resolve_task(str(FIXTURES / "arithmetic_task.toml"), None)
    prompts = free.prompts(PromptSet())
    assert prompts.cot_system == texts.FREE_COT_SYSTEM and "(X)" not in prompts.cot_system
    assert cot_messages("What is 2 + 2?", "", prompts)[1]["content"] == "What is 2 + 2?"
    assert "free_cot_system" not in prompts.as_dict()
    assert PromptSet().as_dict() == resolve_task(None, None).prompts(PromptSet()).as_dict()
    mmlu = resolve_task("mmlu", str(_mmlu_folder(tmp_path)))
    assert mmlu.prompts(PromptSet()).cot_system.endswith(texts.MMLU_ANSWER_FORMAT)
    custom = tmp_path / "p.toml"
    custom.write_text('free_cot_system = "Think, then write The answer is X."\n')
    assert free.prompts(load_prompt_set(custom)).cot_system == "Think, then write The answer is X."
    custom.write_text('free_cot_user = "no problem placeholder"\n')
    with pytest.raises(ValueError, match="free_cot_user lacks placeholder"):
        load_prompt_set(custom)


# ------------------------------------------------------------------ user files

def test_csv_and_jsonl_give_the_same_rows():
    csv_rows = resolve_task(str(QUIZ), str(FIXTURES / "quiz.csv")).questions(None)
    jsonl_rows = resolve_task(str(QUIZ), str(FIXTURES / "quiz.jsonl")).questions(None)
    assert csv_rows == jsonl_rows
    assert csv_rows[0] == {"question_id": "q1", "question": "What is the capital of France?",
                           "options": ["Berlin", "Paris", "Rome", "Madrid"], "answer": "B", "answer_index": 1,
                           "cot_content": "", "category": "geography", "src": "quiz", "task": "quiz",
                           "answer_kind": "letter"}


def test_parquet_list_column_and_index_answers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"q": ["2 + 2?", "3 + 3?"], "opts": [["3", "4"], ["6", "7", "8"]], "gold": [1, 0]}),
                   tmp_path / "d.parquet")
    (tmp_path / "t.toml").write_text('answer_kind = "index"\ndata = "d.parquet"\n'
                                     '[columns]\nquestion = "q"\noptions = "opts"\nanswer = "gold"\n')
    rows = resolve_task(str(tmp_path / "t.toml"), None).questions(None)
    assert [(r["question_id"], r["answer"], r["category"]) for r in rows] == [(0, "B", "t"), (1, "A", "t")]


def test_answer_as_option_text(tmp_path):
    (tmp_path / "d.jsonl").write_text(json.dumps({"q": "Red or blue?", "o": ["red", "blue"], "a": "blue"}) + "\n")
    (tmp_path / "t.toml").write_text('answer_kind = "text"\n[columns]\nquestion = "q"\noptions = "o"\nanswer = "a"\n')
    assert resolve_task(str(tmp_path / "t.toml"), str(tmp_path / "d.jsonl")).questions(None)[0]["answer"] == "B"


BAD_CSV = {
    "missing column": ("qid,prompt,opt_a,opt_b,opt_c,opt_d,topic\nq1,Q?,a,b,c,d,x\n", "row 0 (header) column 'correct': missing column"),
    "answer not among options": ("qid,prompt,opt_a,opt_b,opt_c,opt_d,correct,topic\nq1,Q?,a,b,c,d,B,x\nq2,Q?,a,b,c,d,E,x\n",
                                 "row 2 column 'correct': answer 'E' is not among the 4 options"),
    "empty question": ("qid,prompt,opt_a,opt_b,opt_c,opt_d,correct,topic\nq1,  ,a,b,c,d,B,x\n", "row 1 column 'prompt': empty question"),
    "duplicate id": ("qid,prompt,opt_a,opt_b,opt_c,opt_d,correct,topic\nq1,Q?,a,b,c,d,B,x\nq1,R?,a,b,c,d,A,x\n",
                     "row 2 column 'qid': duplicate id 'q1' (first in row 1)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_rows_name_file_row_and_column(tmp_path, case):
    text, message = BAD_CSV[case]
    data = tmp_path / "bad.csv"
    data.write_text(text)
    with pytest.raises(TaskError) as info:
        resolve_task(str(QUIZ), str(data))
    assert str(info.value) == f"{data} {message}" or str(info.value).startswith(f"{data} {message}")
    assert "\n" not in str(info.value)


def test_missing_key_in_a_jsonl_row(tmp_path):
    data = tmp_path / "bad.jsonl"
    lines = (FIXTURES / "quiz.jsonl").read_text().splitlines()
    row = json.loads(lines[2])
    del row["topic"]
    data.write_text("\n".join([*lines[:2], json.dumps(row)]) + "\n")
    with pytest.raises(TaskError, match=r"bad.jsonl row 3 column 'topic': missing column"):
        resolve_task(str(QUIZ), str(data))


@pytest.mark.parametrize("name, fragment", [
    ("nosuch", "unknown task 'nosuch': built-in tasks are mmlu-pro, mmlu"),
    ("missing.toml", "task file not found"),
])
def test_unknown_task(name, fragment):
    with pytest.raises(TaskError, match=fragment):
        resolve_task(name, None)


def test_task_file_errors(tmp_path):
    task = tmp_path / "t.toml"
    for text, fragment in [
        ('answer_kind = "guess"\n[columns]\nquestion = "q"\nanswer = "a"\n', "answer_kind must be one of"),
        ('[columns]\nquestion = "q"\nanswer = "a"\n', "columns.options must be a column name"),
        ('colums = 1\n', "unknown key(s) colums"),
        ('[columns]\nquestion = "q"\noptions = "o"\nanswer = "a"\n', "names no data file"),
    ]:
        task.write_text(text)
        with pytest.raises(TaskError) as info:
            resolve_task(str(task), None)
        assert fragment in str(info.value)



COLUMNS = '[columns]\nquestion = "q"\noptions = ["a", "b"]\nanswer = "r"\n'
"""A letter task's columns: question, two option columns, the answer."""


@pytest.mark.parametrize("text, message", [
    ('answer_kind = "free"\n[columns]\nquestion = "q"\noptions = "o"\nanswer = "a"\n', "answer_kind free takes no options column"),
    ('[columns]\nquestion = "q"\noptions = []\nanswer = "a"\n', "columns.options must be a column name or a list of column names"),
    ('[columns]\nquestion = "q"\noptions = [' + ", ".join(f'"o{k}"' for k in range(11)) + ']\nanswer = "a"\n', "at most 10 option columns"),
    ('[columns]\nquestion = 5\noptions = "o"\nanswer = "a"\n', "columns.question must name a column"),
    ('[columns]\nquestion = "q"\noptions = "o"\nanswer = ""\n', "columns.answer must name a column"),
    ('answer_kind = "guess"\n' + COLUMNS, "answer_kind must be one of letter, index, text, free, not 'guess'"),
    ('colums = 1\nnmae = 2\n' + COLUMNS, "unknown key(s) colums, nmae"),
    ('[columns]\nquestion = "q"\nanwser = "a"\n', "unknown key(s) columns.anwser"),
    ('name = "t"\n', "a [columns] table is required (question, options, answer; optional id, category)"),
])
def test_task_file_mistakes_are_named_in_one_exact_line(tmp_path, text, message):
    task = tmp_path / "t.toml"
    task.write_text(text)
    with pytest.raises(TaskError) as info:
        resolve_task(str(task), str(FIXTURES / "quiz.csv"))
    assert str(info.value) == f"task file {task}: {message}"


def test_task_file_and_data_file_problems_name_the_file(tmp_path):
    from live_mind.tasks import userfile

    task = tmp_path / "t.toml"
    task.write_text("[columns\n")
    with pytest.raises(TaskError, match=f"^{task}: cannot read task file: invalid TOML"):
        resolve_task(str(task), None)
    task.write_text(COLUMNS)
    with pytest.raises(TaskError, match="names no data file"):
        userfile.task(task, None)  # data is needed unless the caller says otherwise
    with pytest.raises(TaskError) as info:
        resolve_task(str(task), str(tmp_path / "none.csv"))
    assert str(info.value) == f"data file does not exist: {tmp_path / 'none.csv'}"
    (tmp_path / "d.XLSX").write_text("q,a,b,r\n")
    with pytest.raises(TaskError) as info:
        resolve_task(str(task), str(tmp_path / "d.XLSX"))
    assert str(info.value) == (f"task file {task}: data format must be one of jsonl, csv, parquet "
                               "(from format = or the file's extension), not 'xlsx'")
    for name, data in (("bad\nname.csv", b"q,a,b,r\n\xff\xfe,1,2,A\n"), ("bad\nname.parquet", b"PAR1garbagePAR1")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(TaskError) as info:
            resolve_task(str(task), str(tmp_path / name))
        fmt = name.rsplit(".", 1)[1]  # one line: a newline in the file's name too becomes a space
        assert str(info.value).startswith(f"cannot read {tmp_path / name.replace(chr(10), ' ')} as {fmt}: ") and "\n" not in str(info.value)


def test_the_data_format_comes_from_the_task_file_or_the_extension(tmp_path):
    task = tmp_path / "t.toml"
    task.write_text(COLUMNS)
    (tmp_path / "d.json").write_text(json.dumps({"q": "Q?", "a": "x", "b": "y", "r": "B"}) + "\n")
    (tmp_path / "d.txt").write_text("q,a,b,r\nQ?,x,y,A\n")
    assert resolve_task(str(task), str(tmp_path / "d.json")).questions(None)[0]["answer"] == "B"  # .json read as JSONL
    with pytest.raises(TaskError, match="not 'txt'"):
        resolve_task(str(task), str(tmp_path / "d.txt"))
    task.write_text('format = "csv"\n' + COLUMNS)
    assert resolve_task(str(task), str(tmp_path / "d.txt")).questions(None)[0]["answer"] == "A"


def test_a_task_files_shape_with_and_without_its_data(tmp_path):
    from live_mind.tasks.userfile import FREE_SWAP

    letter, free = tmp_path / "letter.toml", tmp_path / "free.toml"
    letter.write_text('name = "quiz"\n' + COLUMNS)
    free.write_text('answer_kind = "free"\n[columns]\nquestion = "q"\nanswer = "r"\ncategory = "topic"\n')
    (tmp_path / "d.jsonl").write_text(json.dumps({"q": "Q?", "a": "x", "b": "y", "r": "A", "topic": "t"}) + "\n")
    for need_data in (True, False):
        shape = resolve_task(str(letter), str(tmp_path / "d.jsonl") if need_data else None, need_data=need_data)
        assert (shape.name, shape.answer_kind, shape.swap, shape.category_column) == ("quiz", "letter", {}, "category")
        other = resolve_task(str(free), str(tmp_path / "d.jsonl") if need_data else None, need_data=need_data)
        assert (other.name, other.answer_kind, other.swap, other.category_column) == ("free", "free", dict(FREE_SWAP), "topic")
        assert shape.select is not None and other.select is not None
    assert resolve_task(str(letter), str(tmp_path / "d.jsonl")).questions(1)[0]["question"] == "Q?"  # per category
    with pytest.raises(TaskError, match="has no data here"):
        resolve_task(str(letter), None, need_data=False).questions(None)

def test_per_category_selection_is_seeded_and_all_rows_keep_file_order():
    task = resolve_task(str(QUIZ), str(FIXTURES / "quiz.csv"))
    assert [r["question_id"] for r in task.questions(None)] == ["q1", "q2", "q3", "q4", "q5"]
    one = task.questions(1, seed=42)
    assert sorted(r["category"] for r in one) == ["geography", "science"]
    assert one == task.questions(1, seed=42)


# ------------------------------------------------------------------ MMLU

def _mmlu_rows() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "mmlu_rows.jsonl").read_text().splitlines()]


def _mmlu_folder(tmp_path: Path, per_subject: bool = False) -> Path:
    """The fixture rows in the cais/mmlu hub layout: all/test-*.parquet, or one folder per subject."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, root = _mmlu_rows(), tmp_path / ("mmlu_subjects" if per_subject else "mmlu")
    groups = {}
    for row in rows:
        groups.setdefault(row["subject"] if per_subject else "all", []).append(row)
    for name, group in groups.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(group), root / name / "test-00000-of-00001.parquet")
    return root


def expected_mmlu(folder: Path, k: int, seed: int = 42) -> list[tuple[str, str]]:
    """(subject, question) of the v2 selection, computed with datasets itself."""
    import datasets

    files = sorted(str(f) for f in folder.glob("**/test-*.parquet"))
    split = datasets.load_dataset("parquet", data_files={"test": files}, split="test").shuffle(seed=seed)
    picked: dict[str, list] = {}
    for row in split:
        if len(picked.setdefault(row["subject"], [])) < k:
            picked[row["subject"]].append((row["subject"], row["question"]))
    return sorted(pair for group in picked.values() for pair in group)


@pytest.mark.parametrize("per_subject", [False, True])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_mmlu_selection_matches_datasets_shuffle(tmp_path, per_subject, k):
    folder = _mmlu_folder(tmp_path, per_subject)
    rows = resolve_task("mmlu", str(folder)).questions(k, seed=42)
    assert sorted((r["category"], r["question"]) for r in rows) == expected_mmlu(folder, k)
    if k == 4:  # philosophy has 3 rows: a subject with fewer gives what it has
        assert sum(r["category"] == "philosophy" for r in rows) == 3
    source = _mmlu_rows()
    for row in rows:  # the id is the row's index in the test split; the answer its letter
        original = source[row["question_id"]]
        assert (original["question"], "ABCD"[original["answer"]]) == (row["question"], row["answer"])
        assert row["options"] == original["choices"] and row["task"] == "mmlu"


def test_mmlu_rejects_other_layouts(tmp_path):
    with pytest.raises(TaskError, match="needs --data_path"):
        resolve_task("mmlu", None)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"question": ["q"], "answer": [0]}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match="not MMLU \\(cais/mmlu layout\\) data: missing column\\(s\\) subject, choices"):
        resolve_task("mmlu", str(tmp_path / "x.parquet"))


def test_the_worked_example_of_docs_tasks():
    root = FIXTURES.parents[1] / "examples"
    rows = resolve_task(str(root / "task_capitals.toml"), None).questions(None)
    assert [(r["question_id"], r["answer"], r["category"]) for r in rows[:2]] == [("cap-01", "B", "americas"),
                                                                                  ("cap-02", "C", "oceania")]
    assert {r["task"] for r in rows} == {"capitals"} and all(len(r["options"]) == 4 for r in rows)


@pytest.mark.parametrize("fmt", ["v1", "UA-SPI"])
def test_free_form_prompts_show_no_options_and_ask_for_the_bare_answer(fmt):
    from live_mind.formats import make_format
    from live_mind.methods.livemind import LiveMindController
    from live_mind.models.scripted import ScriptedModel
    from live_mind.solver import TimingConfig, solve_question

    task = resolve_task(str(FIXTURES / "arithmetic_task.toml"), None)
    row = task.questions(None)[0]
    prompts = task.prompts(PromptSet())
    def reply(request) -> str:
        last = request.messages[-1]["content"]
        return "The answer is 7." if "complete problem" in last or "is complete" in last else "action inference. 3 + 4."

    model = ScriptedModel(responder=reply)
    controller = LiveMindController(model, prompt_format=make_format(fmt, prompts))
    record = solve_question(controller, row, TimingConfig())
    final = model.calls[-1].messages
    text = "\n".join(m["content"] for m in final)
    assert "Options" not in text and "(X)" not in text and '"The answer is X"' in text
    assert (record["pred"], record["correct"]) == ("7", True)
    question_chars = sum(len(s) for s in ["Tom has 3 apples.", "He buys 4 more.", "How many apples does he have now?"])
    assert record["steps"][-1]["arrival"] == pytest.approx(0.25 * question_chars)  # nothing typed after the question


def test_ten_option_columns_are_allowed(tmp_path):
    task = tmp_path / "t.toml"
    names = [f"o{k}" for k in range(10)]
    task.write_text('[columns]\nquestion = "q"\noptions = [' + ", ".join(f'"{n}"' for n in names) + ']\nanswer = "r"\n')
    (tmp_path / "d.csv").write_text("q," + ",".join(names) + ",r\nQ?," + ",".join(names) + ",J\n")
    assert resolve_task(str(task), str(tmp_path / "d.csv")).questions(None)[0]["answer"] == "J"
