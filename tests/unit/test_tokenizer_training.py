"""A trained vocabulary is a function of the corpus and the settings: the same in every process
(the corpus cache's key assumes it)."""

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import hashlib, random
from nlpx.data.tokenizer import train_tokenizer
rng = random.Random(0)
words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 7))) for _ in range(400)]
texts = [" ".join(rng.choice(words) for _ in range(12)) + "." for _ in range(600)]
tok = train_tokenizer(lambda: iter(texts), kind="{kind}", vocab_size=300, lowercase=True)
vocab = tok.get_vocab()
print(len(vocab), hashlib.sha1(" ".join(sorted(vocab, key=vocab.get)).encode()).hexdigest())
"""


def test_wordpiece_and_bpe_vocabularies_are_the_same_in_every_process():
    for kind in ("wordpiece", "bpe"):
        outs = {subprocess.run([sys.executable, "-c", SCRIPT.replace("{kind}", kind)], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip().splitlines()[-1] for _ in range(2)}
        assert len(outs) == 1, (kind, outs)
        assert outs.pop().startswith("300 ")


def test_only_the_five_specials_are_special():
    from nlpx.data.tokenizer import train_tokenizer

    tok = train_tokenizer(["the cat sat on the mat ."] * 20, kind="wordpiece", vocab_size=80, lowercase=True)
    assert sorted(tok.all_special_tokens) == ["[CLS]", "[MASK]", "[PAD]", "[SEP]", "[UNK]"]
    assert tok.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 1, 2, 3, 4]
    assert tok.tokenize("##a") == ["[UNK]", "[UNK]", "a"]  # "##a" in text is text (no "#" in this corpus)
    assert tok("cat mat")["input_ids"][0] == 2 and tok("cat mat")["input_ids"][-1] == 3
