"""The `data=` group's corpora: where documents come from, and what identifies them for the cache."""

from __future__ import annotations

from collections.abc import Iterator


class SyntheticCorpus:
    """The embedded artificial language (data=synthetic): needs no files."""

    kind = "sentences"  # what the sentence-embedding objectives read from it (nlpx.embeddings.data)

    def __init__(self, cfg):
        self.cfg = cfg

    def documents(self, split: bool = True) -> Iterator[list[str]]:
        """Its documents as lists of sentences (split: generated that way; see sentence_splitter)."""
        from nlpx.data.synthetic import synthetic_documents

        c = self.cfg
        return synthetic_documents(c.num_docs, seed=c.generator_seed, num_topics=c.num_topics,
                                   min_sentences=c.min_sentences, max_sentences=c.max_sentences)

    def fingerprint(self) -> dict:
        c = self.cfg
        return {"synthetic": [c.num_docs, c.generator_seed, c.num_topics, c.min_sentences,
                              c.max_sentences]}

    def sentence_splitter(self):
        """None: documents come as sentences (documents(split=False) gives them so too)."""
        return None

    def count_documents(self) -> int:
        return sum(1 for _ in self.documents())

    def check_empty(self, n_docs: int) -> None:
        pass


class TextCorpus:
    """Local .txt / .jsonl files, folders and globs (data=text data.paths=[...])."""

    kind = "sentences"  # what the sentence-embedding objectives read from it (nlpx.embeddings.data)

    def __init__(self, cfg):
        from nlpx.data.sources import expand_paths

        self.cfg = cfg
        self.files = expand_paths(list(cfg.paths))

    def documents(self, split: bool = True) -> Iterator[list[str]]:
        """Its documents as lists of sentences, or (split=False) of their lines, for
        sentence_splitter() to cut."""
        from nlpx.data.sources import read_documents

        c = self.cfg
        return read_documents(self.files, doc_split=c.doc_split, sentences=c.sentences,
                              text_field=c.text_field, split=split, heading=c.get("heading"))

    def sentence_splitter(self):
        """A picklable function from a document's lines to its sentences (data.sentences)."""
        from functools import partial

        from nlpx.data.sources import split_sentences

        return partial(split_sentences, mode=self.cfg.sentences)

    def fingerprint(self) -> dict:
        from nlpx.data.sources import fingerprint

        c = self.cfg
        out = {"files": fingerprint(self.files), "doc_split": c.doc_split,
               "sentences": c.sentences, "text_field": c.text_field}
        if c.sentences == "punct":  # 2: Chinese sentence ends (an entry cut by the earlier rule is not reused)
            out["sentence_ends"] = 2
        if c.doc_split == "heading":
            out["heading"] = str(c.heading)
        return out

    def count_documents(self) -> int:
        from nlpx.data.sources import count_documents

        return count_documents(self.files, doc_split=self.cfg.doc_split, text_field=self.cfg.text_field,
                               heading=self.cfg.get("heading"))

    def check_empty(self, n_docs: int) -> None:
        from nlpx.data.sources import require_nonempty

        require_nonempty(n_docs, self.files)
