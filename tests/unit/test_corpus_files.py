"""Every corpus format gives the same documents as the plain JSON lines it was written from;
damaged files are one line naming the file."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from nlpx.data.sources import expand_paths, read_documents
from nlpx.errors import UserError

TEXTS = ["The cat sat. It purred!", "", "A dog ran far away. Then it came back? Yes.", "One more document here."]
DOCS = [["The cat sat.", "It purred!"], ["A dog ran far away.", "Then it came back?", "Yes."],
        ["One more document here."]]


def docs(*paths, **kw):
    return list(read_documents(expand_paths([str(p) for p in paths]), **kw))


def jsonl_bytes() -> bytes:
    return "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)).encode()


@pytest.mark.parametrize("name", ["c.jsonl", "c.json", "c.jsonl.gz", "c.json.gz", "c.jsonl.zst", "c.zst"])
def test_json_lines_plain_and_compressed(tmp_path, name):
    data = jsonl_bytes()
    if name.endswith(".gz"):
        data = gzip.compress(data)
    elif name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    (tmp_path / name).write_bytes(data)
    assert docs(tmp_path / name) == DOCS


def test_compressed_text_files(tmp_path):
    text = "The cat sat. It purred!\n\nOne more document here.\n"
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "b.txt.zst").write_bytes(zstandard.ZstdCompressor().compress(text.encode()))
    expected = [["The cat sat.", "It purred!"], ["One more document here."]]
    assert docs(tmp_path / "a.txt.gz") == expected == docs(tmp_path / "b.txt.zst")


def table() -> pa.Table:
    return pa.table({"id": list(range(len(TEXTS))), "text": TEXTS})


def test_parquet_and_arrow_shards(tmp_path):
    pq.write_table(table(), tmp_path / "c.parquet", row_group_size=2)
    with pa.ipc.new_stream(tmp_path / "c.arrow", table().schema) as w:  # the format datasets writes
        for batch in table().to_batches(max_chunksize=2):
            w.write_batch(batch)
    assert docs(tmp_path / "c.parquet") == DOCS == docs(tmp_path / "c.arrow")


def test_a_folder_mixes_formats_in_sorted_order(tmp_path):
    pq.write_table(table(), tmp_path / "b.parquet")
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(jsonl_bytes()))
    (tmp_path / "notes.md").write_text("not a corpus file")
    assert docs(tmp_path) == DOCS + DOCS
    assert [p.name for p in expand_paths([str(tmp_path)])] == ["a.jsonl.gz", "b.parquet"]


def test_datasets_save_to_disk_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": TEXTS, "id": list(range(len(TEXTS)))})
    ds.save_to_disk(str(tmp_path / "saved"), num_shards=2)
    assert docs(tmp_path / "saved") == DOCS
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dict"))
    with pytest.raises(UserError, match=r"is a DatasetDict; give one split's folder \(train\)"):
        docs(tmp_path / "dict")


def test_text_field_names_the_column(tmp_path):
    pq.write_table(pa.table({"body": TEXTS}), tmp_path / "c.parquet")
    with pytest.raises(UserError, match=r"c.parquet: no column 'text' \(columns: body\); set data.text_field"):
        docs(tmp_path / "c.parquet")
    assert docs(tmp_path / "c.parquet", text_field="body") == DOCS
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "n.parquet")
    with pytest.raises(UserError, match="n.parquet: row 1: column 'text' holds a int, not a string"):
        docs(tmp_path / "n.parquet")


@pytest.mark.parametrize("name", ["c.jsonl.gz", "c.jsonl.zst", "c.parquet", "c.arrow"])
def test_damaged_files_are_one_line_naming_the_file(tmp_path, name):
    data = {".gz": gzip.compress(jsonl_bytes() * 50), ".zst": zstandard.ZstdCompressor().compress(jsonl_bytes() * 50)}
    path = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(table(), path)
        whole = path.read_bytes()
    elif name.endswith(".arrow"):
        with pa.ipc.new_stream(path, table().schema) as w:
            w.write_table(table())
        whole = path.read_bytes()
    else:
        whole = data[path.suffix]
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match=f"{name}: cannot be read"):
        docs(path)


def test_a_file_named_explicitly_is_text_unless_its_name_says_otherwise(tmp_path):
    (tmp_path / "c.md").write_text("The cat sat. It purred!\n")
    assert docs(tmp_path / "c.md") == [DOCS[0]]  # a folder keeps only the corpus formats:
    with pytest.raises(UserError, match="contains no corpus files"):
        docs(tmp_path)
