"""QA scores against hand-computed cases of the two official scripts' rules."""

from __future__ import annotations

import pytest

from nlpx.eval.qa_metrics import (cmrc2018_scores, cmrc_em, cmrc_f1, longest_common_substring, mixed_segmentation,
                                  squad_f1, squad_normalize, squad_scores)


def test_squad_normalisation_drops_case_punctuation_articles_and_extra_space():
    assert squad_normalize("The  Eiffel-Tower, in Paris!") == "eiffeltower in paris"
    assert squad_normalize("an apple a day") == "apple day"
    assert squad_normalize("theatre") == "theatre"  # only whole-word articles


def test_squad_f1_is_the_token_bag_overlap_and_the_best_gold_counts():
    # prediction "paris france" vs gold "in paris": 1 common token, p = 1/2, r = 1/2
    assert squad_f1("Paris, France", "in Paris") == pytest.approx(0.5)
    # repeated tokens count as often as both sides have them: "a a b" -> [b]... articles go first
    assert squad_f1("new new york", "new york") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    scores = squad_scores(["Denver Broncos", "the cat", "nothing"],
                          [["Denver Broncos", "Broncos"], ["a cat sat"], ["something else"]])
    # EM: 1, 0 ("cat" vs "cat sat"), 0; F1: 1, 2*(1)(1/2)/(1.5) = 2/3, 0
    assert scores == {"exact_match": pytest.approx(1 / 3), "f1": pytest.approx((1 + 2 / 3) / 3)}


def test_cmrc_segmentation_splits_chinese_characters_and_keeps_other_words_whole():
    assert mixed_segmentation("《三国演义》第120回，Luo Guanzhong写的。") == [
        "三", "国", "演", "义", "第", "120", "回", "luo", "guanzhong", "写", "的"]
    assert mixed_segmentation("U.S.A 1,000 (3.5%)") == ["u.s.a", "1,000", "(", "3.5", "%", ")"]


def test_cmrc_f1_uses_the_longest_common_substring_not_the_bag():
    assert longest_common_substring(list("abcde"), list("xbcdy")) == 3
    # gold 北京大学 (4 segments), prediction 在北京大学读书 (7): common substring 4
    p, r = 4 / 7, 4 / 4
    assert cmrc_f1("在北京大学读书", "北京大学") == pytest.approx(2 * p * r / (p + r))
    # the same characters out of order: a bag overlap would be 1, the substring is 1 character
    assert cmrc_f1("京北", "北京") == pytest.approx(0.5)
    assert cmrc_em("《北京》", "北京") == 1.0 and cmrc_em("北京市", "北京") == 0.0
    scores = cmrc2018_scores(["北京", "上海"], [["北京", "北京市"], ["广州"]])
    assert scores == {"exact_match": pytest.approx(0.5), "f1": pytest.approx(0.5)}
