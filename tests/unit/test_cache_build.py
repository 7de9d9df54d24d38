"""Building the corpus cache at scale: a bounded, seeded tokenizer sample; a build killed at any
moment leaves no entry a later run would take as complete; the arrays written in chunks equal
the whole corpus's."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nlpx.data.cache import prepare
from nlpx.data.tokenizer import sample_sentences, train_tokenizer
from tests.conftest import REPO
from tests.unit.test_cache import corpus


def texts(n=2000):
    return [f"sentence number {i} says w{i % 97} and v{i % 13}." for i in range(n)]


def test_the_sample_is_bounded_seeded_and_the_same_every_time():
    data = texts()
    total = sum(len(t.encode()) for t in data)
    passes = sample_sentences(lambda: iter(data), max_bytes=total // 4)
    first, second = list(passes()), list(passes())
    assert first == second and sum(len(t.encode()) for t in first) <= total // 4
    assert 0.15 * len(data) < len(first) <= 0.25 * len(data)
    assert first != data[: len(first)]  # spread over the corpus, not its beginning
    assert list(sample_sentences(lambda: iter(data), max_bytes=10 * total)()) == data  # all when it fits


def test_the_sample_is_in_the_cache_key_and_the_documents_are_all_counted(tmp_path):
    c = corpus(tmp_path / "src", n_docs=40)
    built = {}
    for sample in (None, 300):
        def make(sentences, sample=sample):
            chosen = sentences if sample is None else sample_sentences(sentences, sample)
            return train_tokenizer(chosen, kind="wordpiece", vocab_size=120, lowercase=True)

        spec = {"train": "wordpiece", "vocab_size": 120, **({"sample_bytes": sample} if sample else {})}
        built[sample] = prepare(c, cache_dir=tmp_path / "cache", val_fraction=0.25, tokenizer_spec=spec,
                                make_tokenizer=make)
    assert built[None].path != built[300].path
    for p in built.values():  # the sample stops early; the documents are counted in full anyway
        meta = json.loads((p.path / "meta.json").read_text())
        assert meta["documents"] == 40 and meta["train_docs"] + meta["val_docs"] == 40
    assert len(built[300].tokenizer) < len(built[None].tokenizer)


def test_offsets_written_in_chunks_equal_the_sentences(tmp_path, monkeypatch):
    from nlpx.data import cache

    monkeypatch.setattr(cache._SplitWriter, "_FLUSH", 3)  # many small flushes
    p = prepare(corpus(tmp_path / "src", n_docs=30), cache_dir=tmp_path / "cache", val_fraction=0.25,
                tokenizer_spec={"t": 1}, make_tokenizer=lambda s: train_tokenizer(s, kind="wordpiece", vocab_size=120,
                                                                                 lowercase=True))
    for split in (p.train, p.val):
        assert split.sent_offsets[0] == 0 and split.sent_offsets[-1] == split.tokens.size
        assert np.all(np.diff(split.sent_offsets) > 0)
        assert split.doc_sents[0] == 0 and split.doc_sents[-1] == split.sent_offsets.size - 1
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_an_interrupted_build_leaves_no_entry(tmp_path, monkeypatch):
    from nlpx.data import cache

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache._SplitWriter, "close", interrupted)
    make = lambda s: train_tokenizer(s, kind="wordpiece", vocab_size=120, lowercase=True)  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        prepare(corpus(tmp_path / "src"), cache_dir=tmp_path / "cache", val_fraction=0.25, tokenizer_spec={"t": 1},
                make_tokenizer=make)
    assert list((tmp_path / "cache").iterdir()) == []


KILLED = """
import sys, time
from nlpx.data import cache
from nlpx.data.tokenizer import train_tokenizer
from tests.unit.test_cache import corpus
from pathlib import Path
write = cache._SplitWriter.add
def add(self, *batch):  # writes, then stays mid-build until it is killed
    write(self, *batch)
    time.sleep(120)
cache._SplitWriter.add = add
cache.prepare(corpus(Path(sys.argv[1]), n_docs=400), cache_dir=sys.argv[2], val_fraction=0.25, tokenizer_spec={"t": 1},
              make_tokenizer=lambda s: train_tokenizer(s, kind="wordpiece", vocab_size=120, lowercase=True))
"""


def test_a_build_killed_with_sigkill_is_rebuilt_and_its_folder_removed(tmp_path):
    root = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path / "src"), str(root)], cwd=REPO)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(root.glob(".build-*/train/tokens.bin")):
        time.sleep(0.05)
    assert proc.poll() is None, "the build ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name.split("-")[1] for p in root.iterdir()] == [str(proc.pid)]  # only its build folder
    assert not list(root.glob("*/meta.json"))
    p = prepare(corpus(tmp_path / "src", n_docs=400), cache_dir=root, val_fraction=0.25, tokenizer_spec={"t": 1},
                make_tokenizer=lambda s: train_tokenizer(s, kind="wordpiece", vocab_size=120, lowercase=True))
    assert [q.name for q in root.iterdir()] == [p.path.name]  # rebuilt; the dead build's folder removed
