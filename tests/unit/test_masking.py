import numpy as np
import pytest

from nlpx.data.masking import MaskingConfig, mask_tokens, select_count
from nlpx.errors import UserError

CLS, SEP, PAD, MASK = 0, 1, 2, 3
# Input tokens and random replacements come from disjoint ranges so that every output position
# tells its fate exactly: MASK -> masked, in RANDOM_IDS -> random, unchanged -> kept.
RANDOM_IDS = np.arange(5000, 6000, dtype=np.int64)
SEQ_LEN = 128


def make_example(idx: int) -> tuple[np.ndarray, np.ndarray]:
    """[CLS] text [SEP] pad...: a per-example length so the candidate count varies."""
    g = np.random.default_rng([999, idx])
    n_text = int(g.integers(60, SEQ_LEN - 2))
    ids = np.full(SEQ_LEN, PAD, dtype=np.int64)
    ids[0] = CLS
    ids[1:1 + n_text] = g.integers(1000, 2000, size=n_text)
    ids[1 + n_text] = SEP
    return ids, np.isin(ids, [CLS, SEP, PAD])


def run_many(cfg: MaskingConfig, n_examples: int, seed: int = 7, epoch: int = 0):
    rows = []
    for idx in range(n_examples):
        ids, special = make_example(idx)
        rng = np.random.default_rng([seed, epoch, idx])
        masked, labels = mask_tokens(ids, rng, cfg, mask_id=MASK, special_mask=special,
                                     random_ids=RANDOM_IDS)
        rows.append((ids, special, masked, labels))
    return rows


def fates(rows):
    n_cand = n_sel = n_mask = n_rand = n_keep = 0
    for ids, special, masked, labels in rows:
        sel = labels != -100
        n_cand += int((~special).sum())
        n_sel += int(sel.sum())
        n_mask += int((masked[sel] == MASK).sum())
        n_rand += int(np.isin(masked[sel], RANDOM_IDS).sum())
        n_keep += int((masked[sel] == ids[sel]).sum())
    assert n_mask + n_rand + n_keep == n_sel  # every selected position has exactly one fate
    return n_cand, n_sel, n_mask, n_rand, n_keep


@pytest.mark.parametrize("ratio", [0.15, 0.4])
def test_selected_fraction_and_fate_split(ratio):
    rows = run_many(MaskingConfig(ratio=ratio), 1200)
    n_cand, n_sel, n_mask, n_rand, n_keep = fates(rows)
    assert n_cand >= 100_000
    assert abs(n_sel / n_cand - ratio) < 0.005
    assert abs(n_mask / n_sel - 0.8) < 0.01
    assert abs(n_rand / n_sel - 0.1) < 0.01
    assert abs(n_keep / n_sel - 0.1) < 0.01


def test_exact_count_per_sequence_and_labels():
    for ids, special, masked, labels in run_many(MaskingConfig(), 200):
        sel = labels != -100
        assert sel.sum() == select_count(int((~special).sum()), 0.15)
        np.testing.assert_array_equal(labels[sel], ids[sel])
        np.testing.assert_array_equal(masked[~sel], ids[~sel])  # nothing else is touched
        assert masked.dtype == np.int64 and labels.dtype == np.int64


def test_all_mask_split_is_exact():
    rows = run_many(MaskingConfig(mask=1.0, random=0.0, keep=0.0), 300)
    _, n_sel, n_mask, n_rand, n_keep = fates(rows)
    assert n_sel > 0 and (n_mask, n_rand, n_keep) == (n_sel, 0, 0)


def test_all_keep_leaves_input_unchanged_but_labels_set():
    for ids, _, masked, labels in run_many(MaskingConfig(mask=0.0, random=0.0, keep=1.0), 50):
        np.testing.assert_array_equal(masked, ids)
        assert (labels != -100).sum() > 0


def test_specials_and_padding_never_selected():
    for _, special, _, labels in run_many(MaskingConfig(ratio=0.9, mask=0.5, random=0.5, keep=0.0), 500):
        assert np.all(labels[special] == -100)


def test_random_replacements_come_only_from_random_ids():
    for ids, _, masked, labels in run_many(MaskingConfig(mask=0.0, random=1.0, keep=0.0), 300):
        sel = labels != -100
        assert np.isin(masked[sel], RANDOM_IDS).all()


def test_input_is_not_modified():
    ids, special = make_example(0)
    before = ids.copy()
    mask_tokens(ids, np.random.default_rng(0), MaskingConfig(), mask_id=MASK, special_mask=special,
                random_ids=RANDOM_IDS)
    np.testing.assert_array_equal(ids, before)


def test_same_seed_epoch_index_is_identical_and_new_epoch_differs():
    cfg = MaskingConfig()
    a = run_many(cfg, 100, seed=3, epoch=0)
    b = run_many(cfg, 100, seed=3, epoch=0)
    c = run_many(cfg, 100, seed=3, epoch=1)
    for (_, _, ma, la), (_, _, mb, lb) in zip(a, b):
        np.testing.assert_array_equal(ma, mb)
        np.testing.assert_array_equal(la, lb)
    same = sum(np.array_equal(ma, mc) and np.array_equal(la, lc) for (_, _, ma, la), (_, _, mc, lc) in zip(a, c))
    assert same == 0


def test_no_candidates_selects_nothing():
    ids = np.array([CLS, SEP, PAD, PAD], dtype=np.int64)
    masked, labels = mask_tokens(ids, np.random.default_rng(0), MaskingConfig(), mask_id=MASK,
                                 special_mask=np.ones(4, dtype=bool), random_ids=RANDOM_IDS)
    np.testing.assert_array_equal(masked, ids)
    np.testing.assert_array_equal(labels, [-100] * 4)


def test_one_candidate_is_always_selected():
    ids = np.array([CLS, 1500, SEP], dtype=np.int64)
    _, labels = mask_tokens(ids, np.random.default_rng(0), MaskingConfig(), mask_id=MASK,
                            special_mask=np.array([True, False, True]), random_ids=RANDOM_IDS)
    np.testing.assert_array_equal(labels, [-100, 1500, -100])


@pytest.mark.parametrize("n, ratio, expected", [
    (0, 0.15, 0), (1, 0.15, 1), (3, 0.15, 1), (7, 0.15, 1), (100, 0.15, 15), (128, 0.15, 19),
    (126, 0.15, 19), (510, 0.4, 204), (9, 0.5, 5),  # 4.5 rounds half-up, not to even
])
def test_select_count(n, ratio, expected):
    assert select_count(n, ratio) == expected


@pytest.mark.parametrize("kwargs, key", [
    ({"ratio": 0.0}, "ratio"), ({"ratio": 1.0}, "ratio"), ({"ratio": -0.1}, "ratio"),
    ({"ratio": float("nan")}, "ratio"),
    ({"mask": 1.2, "random": -0.1, "keep": -0.1}, "mask"),
    ({"mask": 0.9, "random": -0.1, "keep": 0.2}, "random"),
    ({"mask": 0.5, "random": 0.3, "keep": 1.5}, "keep"),
    ({"mask": 0.8, "random": 0.1, "keep": 0.0}, "mask \\+ random \\+ keep must sum to 1"),
])
def test_invalid_config_names_the_key(kwargs, key):
    with pytest.raises(UserError, match=f"^objective\\.masking: {key}"):
        MaskingConfig(**kwargs)


def test_sum_tolerance_accepts_float_noise():
    MaskingConfig(mask=0.7, random=0.2, keep=0.1 + 5e-7)
