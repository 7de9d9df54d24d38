"""A deterministic artificial language: the default data of ``nlpx train`` (no download).

It is built so a tiny BERT learns something visible within minutes on a CPU:
- each document has one topic, and topics own disjoint content words, so whether sentence B
  continues A's document is predictable from the words (NSP is learnable);
- sentences follow one small grammar with number agreement, so masked determiners and
  suffixes are predictable from context (MLM loss drops fast):

      DET (ADJ) NOUN VERB DET (ADJ) NOUN (PREP DET (ADJ) NOUN) .

  singular NP: "a"/"the"/"this" + noun stem;     plural NP: "some"/"these"/"many" + stem + "n";
  singular subject: verb stem + "s";             plural subject: bare verb stem.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Iterator

from nlpx.errors import UserError

SINGULAR_DETERMINERS = ("a", "the", "this")
PLURAL_DETERMINERS = ("some", "these", "many")
PREPOSITIONS = ("in", "on", "with", "near", "under", "from")
FUNCTION_WORDS = frozenset(SINGULAR_DETERMINERS + PLURAL_DETERMINERS + PREPOSITIONS + (".",))
PLURAL_NOUN_SUFFIX = "n"
SINGULAR_VERB_SUFFIX = "s"

NOUNS_PER_TOPIC = 30
VERBS_PER_TOPIC = 20
ADJECTIVES_PER_TOPIC = 20
ADJECTIVE_PROB = 0.35
PREP_PHRASE_PROB = 0.4

# Stems are consonant-vowel-consonant-vowel, so every stem ends in a vowel and its suffixed
# forms (ending in "n" / "s") can never equal another stem or another stem's other form.
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_STEM_POOL = tuple(
    c1 + v1 + c2 + v2
    for c1, v1, c2, v2 in itertools.product(_CONSONANTS, _VOWELS, _CONSONANTS, _VOWELS)
    if not {c1 + v1 + c2 + v2, c1 + v1 + c2 + v2 + PLURAL_NOUN_SUFFIX,
            c1 + v1 + c2 + v2 + SINGULAR_VERB_SUFFIX} & FUNCTION_WORDS
)
_STEMS_PER_TOPIC = NOUNS_PER_TOPIC + VERBS_PER_TOPIC + ADJECTIVES_PER_TOPIC
MAX_TOPICS = len(_STEM_POOL) // _STEMS_PER_TOPIC


@dataclass(frozen=True)
class TopicVocabulary:
    """One topic's content words; index i of ``nouns``/``plural_nouns`` (and verbs) is the same lemma."""
    nouns: tuple[str, ...]
    plural_nouns: tuple[str, ...]
    verbs: tuple[str, ...]            # bare form: agrees with a plural subject
    singular_verbs: tuple[str, ...]   # suffixed form: agrees with a singular subject
    adjectives: tuple[str, ...]

    @property
    def words(self) -> frozenset[str]:
        return frozenset(self.nouns + self.plural_nouns + self.verbs + self.singular_verbs + self.adjectives)


def _zipf_cum_weights(n: int) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank + 1) for rank in range(n)))


# Zipf-like word frequencies (weight 1/rank) within a topic: a few words are common, as in real
# text, which gives the model an easy early win on unigram statistics before the grammar.
_NOUN_CUM = _zipf_cum_weights(NOUNS_PER_TOPIC)
_VERB_CUM = _zipf_cum_weights(VERBS_PER_TOPIC)
_ADJ_CUM = _zipf_cum_weights(ADJECTIVES_PER_TOPIC)


class SyntheticLanguage:
    """The vocabulary and grammar; fixed by ``language_seed`` so that every document seed
    (and every ``num_topics`` prefix: topic t is the same for any num_topics > t) shares it."""

    def __init__(self, num_topics: int = 16, *, language_seed: int = 0) -> None:
        if not 1 <= num_topics <= MAX_TOPICS:
            raise UserError(f"data.num_topics: {num_topics} is out of range (valid: 1 to {MAX_TOPICS})")
        pool = list(_STEM_POOL)
        random.Random(language_seed).shuffle(pool)
        topics = []
        for t in range(num_topics):
            stems = pool[t * _STEMS_PER_TOPIC:(t + 1) * _STEMS_PER_TOPIC]
            nouns = tuple(stems[:NOUNS_PER_TOPIC])
            verbs = tuple(stems[NOUNS_PER_TOPIC:NOUNS_PER_TOPIC + VERBS_PER_TOPIC])
            adjectives = tuple(stems[NOUNS_PER_TOPIC + VERBS_PER_TOPIC:])
            topics.append(TopicVocabulary(
                nouns=nouns, plural_nouns=tuple(n + PLURAL_NOUN_SUFFIX for n in nouns),
                verbs=verbs, singular_verbs=tuple(v + SINGULAR_VERB_SUFFIX for v in verbs),
                adjectives=adjectives))
        self.topics: tuple[TopicVocabulary, ...] = tuple(topics)

    def vocabulary(self) -> frozenset[str]:
        """Every word type the language can produce, "." included."""
        return FUNCTION_WORDS.union(*(t.words for t in self.topics))

    def sentence(self, rng: random.Random, topic: int) -> str:
        t = self.topics[topic]
        words, plural_subject = self._noun_phrase(rng, t)
        verb = rng.choices(range(VERBS_PER_TOPIC), cum_weights=_VERB_CUM)[0]
        words.append(t.verbs[verb] if plural_subject else t.singular_verbs[verb])
        words += self._noun_phrase(rng, t)[0]
        if rng.random() < PREP_PHRASE_PROB:
            words.append(rng.choice(PREPOSITIONS))
            words += self._noun_phrase(rng, t)[0]
        return " ".join(words) + " ."

    def document(self, seed: int, index: int, min_sentences: int, max_sentences: int) -> list[str]:
        # Seeded from (seed, index) only, so document i is the same however many are requested.
        # A str seed is hashed with SHA-512 by random.Random: stable across processes.
        rng = random.Random(f"{seed}:{index}")
        topic = rng.randrange(len(self.topics))
        return [self.sentence(rng, topic) for _ in range(rng.randint(min_sentences, max_sentences))]

    @staticmethod
    def _noun_phrase(rng: random.Random, t: TopicVocabulary) -> tuple[list[str], bool]:
        plural = rng.random() < 0.5
        words = [rng.choice(PLURAL_DETERMINERS if plural else SINGULAR_DETERMINERS)]
        if rng.random() < ADJECTIVE_PROB:
            words.append(rng.choices(t.adjectives, cum_weights=_ADJ_CUM)[0])
        noun = rng.choices(range(NOUNS_PER_TOPIC), cum_weights=_NOUN_CUM)[0]
        words.append(t.plural_nouns[noun] if plural else t.nouns[noun])
        return words, plural


def synthetic_documents(num_docs: int, *, seed: int = 1234, num_topics: int = 16,
                        min_sentences: int = 4, max_sentences: int = 10) -> Iterator[list[str]]:
    """``num_docs`` documents of the synthetic language; document i depends only on (seed, i)."""
    # Validated here, not inside the generator, so bad config fails at the call.
    if num_docs < 0:
        raise UserError(f"data.num_docs: {num_docs} is negative (valid: 0 or more)")
    if not 1 <= min_sentences <= max_sentences:
        raise UserError(f"data.min_sentences/max_sentences: {min_sentences}/{max_sentences} is invalid "
                        f"(valid: 1 <= min_sentences <= max_sentences)")
    language = SyntheticLanguage(num_topics)
    return (language.document(seed, i, min_sentences, max_sentences) for i in range(num_docs))
