"""Loaders: every format, every record shape, field mapping, errors that name file/line/field."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from rewardbridge.data.example import Example
from rewardbridge.data.loaders import (
    DataError,
    FieldMap,
    count_records,
    iter_examples,
    iter_judge_items,
    load_examples,
    load_judge_items,
    load_sample_examples,
    parse_label,
    sample_dataset_path,
)

SYSTEM = "You are a chatbot who can solve problems."

PAPER_ROWS: list[dict[str, Any]] = [
    {
        "query": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Which organ produces insulin?"},
        ],
        "label": "Pancreas",
        "subject": "biology",
    },
    {
        "query": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Capital of France?"},
        ],
        "label": "Paris",
        "subject": None,
    },
]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def roll_row(ident: str, question: str, reference: str) -> dict[str, Any]:
    chat = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    return {"id": ident, "prompt": SYSTEM, "messages": json.dumps(chat), "ground_truth": reference}


# --- bundled sample ---------------------------------------------------------------------------


def test_sample_dataset_loads_all_rows_with_system_prompts() -> None:
    examples = load_sample_examples()
    assert len(examples) == 2058
    assert len({e.id for e in examples}) == 2058
    assert all(e.system_prompt and "Therefore, the answer is" in e.system_prompt for e in examples)
    assert all(e.question.strip() and e.reference.strip() for e in examples)
    assert not any(SYSTEM in e.question for e in examples)  # user turn only
    first = examples[0]
    assert first.id == "593"
    assert first.question.startswith("An adult male tested positive for HIV")
    assert first.reference == "Western blot"
    assert first.messages()[0]["role"] == "system"
    assert "messages" not in first.metadata and "ground_truth" not in first.metadata


def test_sample_limit_and_path() -> None:
    assert sample_dataset_path().is_file()
    assert [e.id for e in load_sample_examples(limit=3)] == ["593", "6968", "8005"]
    assert load_sample_examples(limit=0) == []


# --- record shapes ----------------------------------------------------------------------------


def test_paper_format_query_messages_and_label(tmp_path: Path) -> None:
    examples = load_examples(write_jsonl(tmp_path / "paper.jsonl", PAPER_ROWS))
    assert examples[0] == Example(
        id="0",  # no id field: the 0-based row index
        question="Which organ produces insulin?",
        reference="Pancreas",
        domain="biology",
        system_prompt=SYSTEM,
        metadata={},
    )
    assert examples[1].id == "1" and examples[1].domain is None


def test_roll_format_messages_json_string(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "roll.jsonl", [roll_row("17", "Why is the sky blue?", "Rayleigh")]
    )
    (ex,) = load_examples(path)
    assert (ex.id, ex.question, ex.reference, ex.system_prompt) == (
        "17",
        "Why is the sky blue?",
        "Rayleigh",
        SYSTEM,
    )


@pytest.mark.parametrize(
    ("row", "question", "reference"),
    [
        ({"question": "q1", "reference": "r1"}, "q1", "r1"),
        ({"prompt": "q2", "answer": 42}, "q2", "42"),
        ({"problem": "q3", "ground_truth": "r3"}, "q3", "r3"),
        ({"prompt": [{"role": "user", "content": "q4"}], "gold": "r4"}, "q4", "r4"),
        ({"question": "[1, 2] summed?", "answer": "3"}, "[1, 2] summed?", "3"),
    ],
)
def test_plain_shapes(tmp_path: Path, row: dict[str, Any], question: str, reference: str) -> None:
    (ex,) = load_examples(write_jsonl(tmp_path / "plain.jsonl", [row]))
    assert (ex.question, ex.reference, ex.system_prompt) == (question, reference, None)


def test_plain_system_prompt_field_and_metadata(tmp_path: Path) -> None:
    row = {"id": 7, "question": "q", "answer": "a", "system": "be brief", "source": "x"}
    (ex,) = load_examples(write_jsonl(tmp_path / "d.jsonl", [row]))
    assert (ex.id, ex.system_prompt, dict(ex.metadata)) == ("7", "be brief", {"source": "x"})


# --- formats ----------------------------------------------------------------------------------


def test_json_array_and_data_object(tmp_path: Path) -> None:
    array = tmp_path / "a.json"
    array.write_text(json.dumps(PAPER_ROWS))
    wrapped = tmp_path / "w.json"
    wrapped.write_text(json.dumps({"data": PAPER_ROWS, "version": 1}))
    for path in (array, wrapped):
        assert [e.reference for e in load_examples(path)] == ["Pancreas", "Paris"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(DataError, match=r"bad\.json: expected a JSON array"):
        load_examples(bad)


def test_parquet_nested_chat_and_batches(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "paper.parquet"
    rows = PAPER_ROWS * 1500  # more than one record batch
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=1000)
    examples = load_examples(path)
    assert len(examples) == 3000 == count_records(path)
    assert examples[2].id == "2" and examples[2].question == "Which organ produces insulin?"
    assert examples[2].system_prompt == SYSTEM and examples[-1].reference == "Paris"


def test_saved_hf_dataset_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [roll_row(str(i), f"question {i}", f"answer {i}") for i in range(5)]
    ds = datasets.Dataset.from_list(rows)
    ds.save_to_disk(str(tmp_path / "ds"))
    examples = load_examples(tmp_path / "ds")
    assert [e.question for e in examples] == [f"question {i}" for i in range(5)]
    assert examples[0].system_prompt == SYSTEM

    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "one_split"))
    assert len(load_examples(tmp_path / "one_split")) == 5
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(DataError, match="splits train, test"):
        load_examples(tmp_path / "two")


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"x\.csv.*unknown data format"):
        load_examples(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        load_examples(tmp_path / "nope.jsonl")


def test_folder_that_is_not_a_saved_dataset(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    (tmp_path / "plain").mkdir()
    with pytest.raises(
        DataError, match=r"plain: a folder, but not one written by Dataset\.save_to_disk"
    ):
        load_examples(tmp_path / "plain")


def test_jsonl_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"question": "q", "answer": "a"}).encode())
    assert load_examples(path)[0].reference == "a"


def test_count_records_jsonl_without_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}')
    assert count_records(path) == 2


# --- field mapping ----------------------------------------------------------------------------


def test_field_map_parse() -> None:
    assert FieldMap.parse("question=prompt, reference=answer") == FieldMap(
        question="prompt", reference="answer"
    )
    assert FieldMap.parse(None) == FieldMap() == FieldMap.parse("")
    with pytest.raises(ValueError, match="unknown target field 'questoin'"):
        FieldMap.parse("questoin=prompt")
    with pytest.raises(ValueError, match="not TARGET=SOURCE"):
        FieldMap.parse("question")


def test_field_map_overrides_detection_and_follows_dotted_paths(tmp_path: Path) -> None:
    row = {
        "uid": "a1",
        "text": "What is 2+2?",
        "answer": "wrong field",
        "gold": {"final": "4"},
        "model_a": {"solution": "2+2=4", "is_correct": True},
    }
    path = write_jsonl(tmp_path / "d.jsonl", [row])
    fields = FieldMap.parse(
        "id=uid,question=text,reference=gold.final,response=model_a.solution,"
        "label=model_a.is_correct"
    )
    (item,) = load_judge_items(path, fields=fields)
    assert (item.id, item.question, item.reference, item.response, item.label) == (
        "a1",
        "What is 2+2?",
        "4",
        "2+2=4",
        True,
    )


def test_mapped_field_missing_names_it(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError, match=r"d\.jsonl:1: field 'reference'.*'solution'"):
        load_examples(path, fields=FieldMap(reference="solution"))


# --- judge items ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("Yes", True),
        ("correct", True),
        ("incorrect", False),
        ("0", False),
        (None, None),
    ],
)
def test_parse_label(raw: Any, expected: bool | None) -> None:
    assert parse_label(raw) is expected


def test_judge_items_labels_and_empty_response(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "question": "q", "ground_truth": "4", "response": "4", "label": "yes"},
        {"id": "b", "question": "q", "ground_truth": "4", "output": "", "is_correct": 0},
        {"id": "c", "question": "q", "ground_truth": "4", "response": "5", "domain": "math"},
    ]
    items = load_judge_items(write_jsonl(tmp_path / "j.jsonl", rows))
    assert [(i.id, i.response, i.label, i.domain) for i in items] == [
        ("a", "4", True, None),
        ("b", "", False, None),  # an empty response is kept: the verifier reports it
        ("c", "5", None, "math"),
    ]


def test_paper_label_is_the_reference_not_a_verdict(tmp_path: Path) -> None:
    row = {**PAPER_ROWS[0], "response": "Therefore, the answer is Pancreas"}
    (item,) = load_judge_items(write_jsonl(tmp_path / "p.jsonl", [row]))
    assert (item.reference, item.label) == ("Pancreas", None)


def test_bundled_labeled_pairs_load() -> None:
    from rewardbridge.data.labeled_sets import corpus_path

    path = corpus_path("hardverify_math", "HardVerify-Math_pairs.jsonl")
    items = load_judge_items(path)
    assert len(items) == 500
    assert {i.label for i in items} == {True, False}


# --- bad rows ---------------------------------------------------------------------------------

BAD_ROWS = [
    ("{not json", r"bad\.jsonl:2: not valid JSON"),
    ('["a", "b"]', r"bad\.jsonl:2: expected an object, got list"),
    ('{"question": "q"}', r"bad\.jsonl:2: field 'reference': missing"),
    ('{"reference": "r"}', r"bad\.jsonl:2: field 'question': missing"),
    ('{"question": ["a"], "reference": "r"}', r"bad\.jsonl:2: field 'question': expected a string"),
    ('{"question": "  ", "reference": "r"}', r"bad\.jsonl:2: field 'question': empty"),
    ('{"question": "q", "reference": ""}', r"bad\.jsonl:2: field 'reference': empty"),
    (
        '{"messages": "[{\\"role\\": \\"system\\", \\"content\\": \\"s\\"}]", "label": "r"}',
        r"bad\.jsonl:2: field 'messages': the chat has no user message",
    ),
]


@pytest.mark.parametrize(("line", "message"), BAD_ROWS)
def test_bad_row_error_names_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "ok", "reference": "ok"}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        load_examples(path)


def test_bad_judge_item_rows(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "j.jsonl",
        [
            {"question": "q", "reference": "r"},
            {"question": "q", "reference": "r", "response": "x", "label": "maybe"},
        ],
    )
    with pytest.raises(DataError, match=r"j\.jsonl:1: field 'response': missing"):
        load_judge_items(path)
    records = iter_judge_items(path, skip_invalid=True)
    assert list(records) == []
    assert records.skipped == 2
    assert "j.jsonl:2: field 'label': cannot read 'maybe'" in records.errors[1]


def test_skip_invalid_counts_logs_and_keeps_row_index_ids(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "mixed.jsonl"
    good = [json.dumps({"question": f"q{i}", "reference": f"r{i}"}) for i in range(4)]
    path.write_text("\n".join([good[0], "{oops", good[1], "", '{"question": "q"}', *good[2:]]))
    records = iter_examples(path, skip_invalid=True)
    with caplog.at_level(logging.WARNING, logger="rewardbridge.data.loaders"):
        examples = list(records)
    # ids are record indexes counted over every non-blank line, so they do not shift
    assert [e.id for e in examples] == ["0", "2", "4", "5"]
    assert records.skipped == 2
    assert records.errors[0].startswith(f"{path}:2: not valid JSON")
    assert records.errors[1].startswith(f"{path}:5: field 'reference'")
    assert f"{path}:2:" in caplog.text and f"{path}:5:" in caplog.text
    assert load_examples(path, skip_invalid=True, limit=2) == examples[:2]


def test_json_and_parquet_errors_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"question": "q", "reference": "r"}, {"question": "q"}]))
    with pytest.raises(DataError, match=r"rows\.json: row 1: field 'reference'"):
        load_examples(path)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"question": "q",\n  "reference": }]')
    with pytest.raises(DataError, match=r"broken\.json:2: not valid JSON"):
        load_examples(broken)


# --- streaming --------------------------------------------------------------------------------


def test_jsonl_streams_in_flat_memory(tmp_path: Path) -> None:
    """40k rows (~3.5 MB of JSON, ~20 MB as objects) stream through with a flat, small peak."""
    import tracemalloc

    n = 40_000
    path = tmp_path / "big.jsonl"
    row = '{"id": "%d", "question": "What is %d + 1?", "reference": "%d", "response": "It is %d"}\n'
    with path.open("w") as f:
        f.writelines(row % (i, i, i + 1, i + 1) for i in range(n))
    records = iter_judge_items(path)
    tracemalloc.start()
    try:
        count = 0
        for item in records:
            count += 1
            last = item
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n and last.id == str(n - 1) and last.reference == str(n)
    assert peak < 2_000_000, f"peak {peak / 1e6:.1f} MB while streaming {n} rows"
