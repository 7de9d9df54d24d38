import itertools

import pytest

from nlpx.data.synthetic import (FUNCTION_WORDS, PLURAL_DETERMINERS, PREPOSITIONS, SINGULAR_DETERMINERS,
                                 SyntheticLanguage, TopicVocabulary, synthetic_documents)
from nlpx.errors import UserError

LANG = SyntheticLanguage(16)
DOCS = list(synthetic_documents(300, seed=1234))


class GrammarError(AssertionError):
    pass


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise GrammarError(msg)


def parse_noun_phrase(words: list[str], i: int, topic: TopicVocabulary) -> tuple[int, bool]:
    """DET (ADJ) NOUN with number agreement; returns (next index, plural)."""
    expect(words[i] in SINGULAR_DETERMINERS + PLURAL_DETERMINERS, f"determiner expected at {i}: {words}")
    plural = words[i] in PLURAL_DETERMINERS
    i += 1
    if words[i] in topic.adjectives:
        i += 1
    expect(words[i] in (topic.plural_nouns if plural else topic.nouns), f"noun agreeing at {i}: {words}")
    return i + 1, plural


def parse_sentence(sentence: str, topic: TopicVocabulary) -> dict:
    """Parse DET (ADJ) NOUN VERB DET (ADJ) NOUN (PREP DET (ADJ) NOUN) . exactly, or raise."""
    expect(sentence.endswith(" ."), f"ends with ' .': {sentence!r}")
    words = sentence.split(" ")[:-1]
    i, plural_subject = parse_noun_phrase(words, 0, topic)
    expect(words[i] in (topic.verbs if plural_subject else topic.singular_verbs), f"verb agreeing: {words}")
    i, _ = parse_noun_phrase(words, i + 1, topic)
    has_pp = i < len(words)
    if has_pp:
        expect(words[i] in PREPOSITIONS, f"preposition expected at {i}: {words}")
        i, _ = parse_noun_phrase(words, i + 1, topic)
    expect(i == len(words), f"trailing words: {words}")
    return {"plural_subject": plural_subject, "has_pp": has_pp}


def topic_of(doc: list[str]) -> int:
    subject_noun = next(w for w in doc[0].split() if w not in FUNCTION_WORDS and
                        any(w in t.nouns or w in t.plural_nouns for t in LANG.topics))
    (t,) = [i for i, t in enumerate(LANG.topics) if subject_noun in t.words]
    return t


def test_same_arguments_give_identical_output_and_seed_matters():
    assert list(synthetic_documents(300, seed=1234)) == DOCS
    other_seed = list(synthetic_documents(300, seed=1235))
    # Not merely shifted: seeds must not share documents (as seed + index seeding would).
    assert not {tuple(d) for d in other_seed} & {tuple(d) for d in DOCS}


def test_document_i_does_not_depend_on_how_many_are_requested():
    assert list(synthetic_documents(10))[:5] == list(synthetic_documents(5))
    assert DOCS[:40] == list(synthetic_documents(40, seed=1234))


def test_topic_vocabularies_are_disjoint_and_a_few_dozen_words_each():
    for t in LANG.topics:
        assert (len(t.nouns), len(t.verbs), len(t.adjectives)) == (30, 20, 20)
        assert len(t.words) == 30 * 2 + 20 * 2 + 20  # every form distinct
        assert not t.words & FUNCTION_WORDS
    for a, b in itertools.combinations(LANG.topics, 2):
        assert not a.words & b.words


def test_language_is_fixed_and_topics_are_stable_across_num_topics():
    assert SyntheticLanguage(4).topics == LANG.topics[:4]
    assert SyntheticLanguage(16).topics == LANG.topics


def test_documents_of_different_topics_share_no_content_words():
    topics = [topic_of(d) for d in DOCS]
    assert len(set(topics)) == 16  # 300 docs cover every topic
    content = [{w for s in d for w in s.split()} - FUNCTION_WORDS for d in DOCS]
    for i, j in itertools.combinations(range(60), 2):
        if topics[i] != topics[j]:
            assert not content[i] & content[j]
        else:
            assert content[i] <= LANG.topics[topics[i]].words


def test_every_sentence_follows_the_grammar_with_agreement():
    seen = {"plural_subject": set(), "has_pp": set()}
    for doc in DOCS:
        topic = LANG.topics[topic_of(doc)]
        for sentence in doc:
            for key, value in parse_sentence(sentence, topic).items():
                seen[key].add(value)
    # Both numbers and both sentence shapes occur, so the check above covered all rules.
    assert seen == {"plural_subject": {True, False}, "has_pp": {True, False}}


def test_the_grammar_check_rejects_agreement_errors():
    topic = LANG.topics[0]
    noun, plural_noun, verb, singular_verb = topic.nouns[0], topic.plural_nouns[0], topic.verbs[0], topic.singular_verbs[0]
    good = f"the {noun} {singular_verb} some {plural_noun} ."
    assert parse_sentence(good, topic) == {"plural_subject": False, "has_pp": False}
    for bad in [f"the {noun} {verb} some {plural_noun} .",          # singular subject, bare verb
                f"these {noun} {verb} some {plural_noun} .",        # plural det, singular noun
                f"the {noun} {singular_verb} some {noun} .",        # plural det, singular object
                f"the {noun} {singular_verb} some {plural_noun} the {noun} ."]:  # no preposition
        with pytest.raises(GrammarError):
            parse_sentence(bad, topic)


def test_sentence_counts_lowercase_and_vocabulary_bound():
    counts = {len(d) for d in DOCS}
    assert min(counts) == 4 and max(counts) == 10
    words = {w for d in DOCS for s in d for w in s.split()}
    vocab = LANG.vocabulary()
    assert words <= vocab
    assert all(w.islower() or w == "." for w in words)
    assert len(vocab) == 16 * 120 + len(FUNCTION_WORDS)
    assert len(vocab) <= 3000


def test_sentence_count_arguments_are_respected():
    docs = list(synthetic_documents(50, min_sentences=2, max_sentences=2, num_topics=3))
    assert all(len(d) == 2 for d in docs)
    assert {topic_of(d) for d in docs} == {0, 1, 2}


def test_invalid_arguments_raise_user_errors():
    with pytest.raises(UserError, match=r"^data\.num_topics: 0 is out of range \(valid: 1 to \d+\)$"):
        synthetic_documents(5, num_topics=0)
    with pytest.raises(UserError, match=r"^data\.num_topics: 1000 is out of range"):
        synthetic_documents(5, num_topics=1000)
    with pytest.raises(UserError, match=r"^data\.min_sentences/max_sentences: 5/3 is invalid"):
        synthetic_documents(5, min_sentences=5, max_sentences=3)
    with pytest.raises(UserError, match=r"^data\.num_docs: -1 is negative"):
        synthetic_documents(-1)
