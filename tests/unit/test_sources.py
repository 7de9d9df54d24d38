import logging
import os
import pathlib
import re

import pytest

from nlpx.data.sources import expand_paths, fingerprint, read_documents, require_nonempty
from nlpx.errors import UserError


def write(path: pathlib.Path, data: str | bytes) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def docs(files, **kw) -> list[list[str]]:
    return list(read_documents(files, **kw))


def data_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nlpx.data" and r.levelno == logging.WARNING]


# ---- messy bytes ----

def test_bom_is_stripped(tmp_path):
    f = write(tmp_path / "bom.txt", b"\xef\xbb\xbfHello there.\n")
    assert docs([f], sentences="lines") == [["Hello there."]]


def test_crlf_and_lone_cr_read_like_lf(tmp_path):
    crlf = write(tmp_path / "crlf.txt", b"one\r\ntwo\r\n\r\nthree\r\n")
    cr = write(tmp_path / "cr.txt", b"one\rtwo\r\rthree\r")
    expected = [["one", "two"], ["three"]]
    assert docs([crlf], sentences="lines") == expected
    assert docs([cr], sentences="lines") == expected


def test_invalid_utf8_replaced_counted_and_reported_once_per_file(tmp_path, caplog):
    # 1 bad byte on line 1, 2 on line 3 (a stray continuation byte and 0xff), 0 in clean.txt.
    bad = write(tmp_path / "shakespeare-caesar.txt", b"Et tu\xff Brute.\n\nCaesar \x80dies\xfe.\n")
    clean = write(tmp_path / "clean.txt", "Caf\u00e9 au lait.\n")
    with caplog.at_level(logging.WARNING, logger="nlpx.data"):
        out = docs([bad, clean], sentences="lines")
        assert docs([bad], sentences="lines") == out[:2]  # the cache reads a corpus twice
    assert out == [["Et tu\ufffd Brute."], ["Caesar \ufffddies\ufffd."], ["Caf\u00e9 au lait."]]
    assert data_warnings(caplog) == [f"{bad}: 3 invalid UTF-8 byte(s) replaced with U+FFFD"]


def test_truncated_multibyte_sequence_counts_each_byte(tmp_path, caplog):
    # "\xe2\x82" is the start of a 3-byte sequence cut short: 2 invalid bytes.
    f = write(tmp_path / "cut.txt", b"price \xe2\x82 ten.\n")
    with caplog.at_level(logging.WARNING, logger="nlpx.data"):
        assert docs([f], sentences="lines") == [["price \ufffd\ufffd ten."]]
    assert data_warnings(caplog) == [f"{f}: 2 invalid UTF-8 byte(s) replaced with U+FFFD"]


def test_empty_and_whitespace_only_files_skipped_with_warning(tmp_path, caplog):
    empty = write(tmp_path / "empty.txt", b"")
    blank = write(tmp_path / "blank.txt", b"\xef\xbb\xbf  \n\t\r\n\n")
    empty_jsonl = write(tmp_path / "empty.jsonl", b"\n\n")
    real = write(tmp_path / "real.txt", "Some text.\n")
    with caplog.at_level(logging.WARNING, logger="nlpx.data"):
        out = docs([empty, blank, empty_jsonl, real])
    assert out == [["Some text."]]
    assert data_warnings(caplog) == [
        f"{empty}: empty or whitespace-only file, skipped",
        f"{blank}: empty or whitespace-only file, skipped",
        f"{empty_jsonl}: empty or whitespace-only file, skipped",
    ]


# ---- documents and sentences ----

TWO_DOCS = "First line.\nSecond line.\n\n  \n\nThird line.\n\n"


def test_blank_line_split(tmp_path):
    f = write(tmp_path / "a.txt", TWO_DOCS)
    assert docs([f], doc_split="blank_line", sentences="lines") == [
        ["First line.", "Second line."], ["Third line."]]


def test_file_split_one_document_per_file(tmp_path):
    a = write(tmp_path / "a.txt", TWO_DOCS)
    b = write(tmp_path / "b.txt", "Other file.\n")
    assert docs([a, b], doc_split="file", sentences="lines") == [
        ["First line.", "Second line.", "Third line."], ["Other file."]]


BOOK = "\ufeff《书》 广告\n第1章 开篇\n\u3000\u3000甲说。乙说！\n\n第二回 再说\n丙说？\n  第3章 indented is text\n"


def test_heading_split_starts_a_document_at_each_heading_line(tmp_path):
    from nlpx.data.sources import count_documents

    f = write(tmp_path / "a.txt", BOOK)
    heading = "第[0-9一二三四五六七八九十百]+[章回]"
    got = docs([f], doc_split="heading", heading=heading)
    assert got == [["《书》 广告"], ["第1章 开篇 甲说。", "乙说！"], ["第二回 再说 丙说？", "第3章 indented is text"]]
    assert count_documents([f], doc_split="heading", heading=heading) == 3
    assert docs([f], doc_split="heading", heading=heading, split=False)[1] == ["第1章 开篇", "\u3000\u3000甲说。乙说！"]


@pytest.mark.parametrize("kw,message", [
    ({"doc_split": "heading"}, r"^data\.doc_split=heading: give data\.heading"),
    ({"doc_split": "heading", "heading": "第(["}, r"^data\.heading=第\(\[: not a valid regular expression"),
    ({"doc_split": "blank_line", "heading": "x"}, r"^data\.heading=x: not read with data\.doc_split=blank_line"),
])
def test_heading_settings_that_cannot_work_are_user_errors(kw, message, tmp_path):
    f = write(tmp_path / "a.txt", BOOK)
    with pytest.raises(UserError, match=message):
        read_documents([f], **kw)


def test_lines_mode_keeps_each_nonempty_line(tmp_path):
    f = write(tmp_path / "a.txt", "  no final punctuation  \nTwo. Sentences here.\n")
    assert docs([f], sentences="lines") == [["no final punctuation", "Two. Sentences here."]]


def test_punct_mode_joins_wrapped_lines_and_splits_at_sentence_ends(tmp_path):
    text = ('It was the best of\ntimes, it was the worst\nof times. "Really?" she\n'
            'asked. He said "yes." Then (quietly.) Wow!! And 3.14 stays whole...\nEnd\n')
    f = write(tmp_path / "a.txt", text)
    assert docs([f], sentences="punct") == [[
        "It was the best of times, it was the worst of times.",
        '"Really?"',
        "she asked.",
        'He said "yes."',
        "Then (quietly.)",
        "Wow!!",
        "And 3.14 stays whole...",
        "End",
    ]]


def test_invalid_doc_split_and_sentences_values(tmp_path):
    f = write(tmp_path / "a.txt", "x\n")
    with pytest.raises(UserError, match=r"^data\.doc_split: 'paragraph' is not valid \(valid: blank_line, file, heading\)$"):
        read_documents([f], doc_split="paragraph")
    with pytest.raises(UserError, match=r"^data\.sentences: 'nltk' is not valid \(valid: punct, lines\)$"):
        read_documents([f], sentences="nltk")


# ---- jsonl ----

def test_jsonl_field_selection_one_document_per_record(tmp_path):
    f = write(tmp_path / "c.jsonl",
              '{"id": 1, "body": "A cat sat. It purred.", "text": "ignored"}\n'
              '\n'
              '{"id": 2, "body": "Line one\\nline two."}\n'
              '{"id": 3, "body": "   "}\n')
    assert docs([f], text_field="body") == [["A cat sat.", "It purred."], ["Line one line two."]]
    assert docs([f], text_field="body", sentences="lines", doc_split="blank_line") == [
        ["A cat sat. It purred."], ["Line one", "line two."]]


def test_jsonl_missing_field_names_file_line_and_present_keys(tmp_path):
    f = write(tmp_path / "c.jsonl", '{"text": "ok."}\n\n{"id": 7, "content": "no text key"}\n')
    with pytest.raises(UserError) as e:
        docs([f])
    assert str(e.value) == (f"{f}:3: no field 'text' (keys present: 'id', 'content'); "
                            "set data.text_field to the field holding the text")


def test_jsonl_non_string_field(tmp_path):
    f = write(tmp_path / "c.jsonl", '{"text": ["a", "b"], "id": 1}\n')
    with pytest.raises(UserError) as e:
        docs([f])
    assert str(e.value) == f"{f}:1: field 'text' is a list, not a string (keys present: 'text', 'id')"


def test_jsonl_invalid_json_names_file_and_line(tmp_path):
    f = write(tmp_path / "c.jsonl", '{"text": "fine."}\n{"text": "broken\n')
    with pytest.raises(UserError, match=rf"^{re.escape(str(f))}:2: not valid JSON \(") as e:
        docs([f])
    assert "\n" not in str(e.value)


def test_jsonl_non_object_record(tmp_path):
    f = write(tmp_path / "c.jsonl", '["text"]\n')
    with pytest.raises(UserError, match=rf"^{re.escape(str(f))}:1: expected a JSON object with a 'text' field, got a list$"):
        docs([f])


# ---- paths ----

def test_folder_expansion_recursive_sorted_txt_and_jsonl_only(tmp_path):
    for name in ["b.txt", "a.jsonl", "sub/c.txt", "sub/deeper/a.txt", "notes.md", "sub/x.csv"]:
        write(tmp_path / "corpus" / name, "x\n")
    got = expand_paths([str(tmp_path / "corpus")])
    assert [p.relative_to(tmp_path / "corpus").as_posix() for p in got] == [
        "a.jsonl", "b.txt", "sub/c.txt", "sub/deeper/a.txt"]


def test_plain_file_of_any_extension_is_kept(tmp_path):
    f = write(tmp_path / "book.md", "x\n")
    assert expand_paths([str(f)]) == [f]


def test_glob_expansion_sorted_and_dedup_keeps_first_occurrence(tmp_path):
    for name in ["z.txt", "a.txt", "m.txt", "sub/b.txt"]:
        write(tmp_path / name, "x\n")
    got = expand_paths([str(tmp_path / "m.txt"), str(tmp_path / "*.txt"),
                        str(tmp_path / "**" / "*.txt"), str(tmp_path / "m.txt")])
    assert [p.relative_to(tmp_path).as_posix() for p in got] == ["m.txt", "a.txt", "z.txt", "sub/b.txt"]


def test_dedup_sees_through_relative_paths(tmp_path, monkeypatch):
    f = write(tmp_path / "a.txt", "x\n")
    monkeypatch.chdir(tmp_path)
    assert expand_paths(["a.txt", str(f)]) == [pathlib.Path("a.txt")]


def test_missing_path_and_empty_glob(tmp_path):
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(UserError) as e:
        expand_paths([missing])
    assert str(e.value) == (f"data.paths: '{missing}' does not exist (give .txt, .jsonl, .json (each also .gz or "
                            ".zst), .parquet or .arrow files, datasets save_to_disk folders, or globs)")
    with pytest.raises(UserError, match=r"does not exist"):
        expand_paths([str(tmp_path / "*.jsonl")])


def test_folder_without_corpus_files(tmp_path):
    write(tmp_path / "d" / "notes.md", "x\n")
    with pytest.raises(UserError) as e:
        expand_paths([str(tmp_path / "d")])
    assert str(e.value) == (f"data.paths: '{tmp_path / 'd'}' contains no corpus files (.txt, .jsonl, .json (each "
                            "also .gz or .zst), .parquet or .arrow files, datasets save_to_disk folders)")


def test_empty_paths_list():
    with pytest.raises(UserError, match=r"^data\.paths is empty: data=text needs data\.paths=\[\.\.\.\]"):
        expand_paths([])


def test_fingerprint_changes_with_content(tmp_path):
    f = write(tmp_path / "a.txt", "abc\n")
    os.utime(f, ns=(1_000_000_000, 2_000_000_000))
    assert fingerprint([f]) == [(str(f.resolve()), 4, 2_000_000_000)]
    write(f, "abcdef\n")
    os.utime(f, ns=(1_000_000_000, 3_000_000_000))
    assert fingerprint([f]) == [(str(f.resolve()), 7, 3_000_000_000)]


def test_require_nonempty(tmp_path):
    files = [tmp_path / f"f{i}.txt" for i in range(7)]
    require_nonempty(1, files)  # a non-empty corpus passes silently
    with pytest.raises(UserError) as e:
        require_nonempty(0, files)
    shown = ", ".join(str(f) for f in files[:5])
    assert str(e.value) == f"data.paths: no text found in 7 file(s): {shown}, ... and 2 more"
