"""Length-bucketed batches: every example once per epoch, seeded, and far less padding."""

import numpy as np

from nlpx.data.buckets import BucketBatchSampler, bucketed_batches, padding_fraction

LENGTHS = np.random.default_rng(0).integers(5, 120, size=1003)


def test_every_example_exactly_once_per_epoch():
    for shuffle in (True, False):
        batches = bucketed_batches(LENGTHS, 32, seed=1, epoch=0, shuffle=shuffle)
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(LENGTHS)))
        assert all(1 <= len(b) <= 32 for b in batches)


def test_seeded_by_seed_and_epoch():
    a = bucketed_batches(LENGTHS, 32, seed=1, epoch=0)
    assert all((x == y).all() for x, y in zip(a, bucketed_batches(LENGTHS, 32, seed=1, epoch=0)))
    b = bucketed_batches(LENGTHS, 32, seed=1, epoch=1)
    assert any(len(x) != len(y) or (x != y).any() for x, y in zip(a, b))


def test_padding_waste_is_small_next_to_random_batches():
    bucketed = padding_fraction(LENGTHS, bucketed_batches(LENGTHS, 32, seed=1, epoch=0))
    order = np.random.default_rng(1).permutation(len(LENGTHS))
    random = padding_fraction(LENGTHS, [order[i:i + 32] for i in range(0, len(order), 32)])
    assert random > 0.4 and bucketed < 0.05  # uniform lengths 5..119: ~47% padding at random


def test_padding_fraction_by_hand():
    assert padding_fraction(np.array([2, 4, 3, 3]), [np.array([0, 1]), np.array([2, 3])]) == 1 - 12 / 14


def test_sampler_length_matches_its_batches():
    for n in (1003, 1600, 31):
        s = BucketBatchSampler(LENGTHS[:n], 32, seed=0, window=50)
        assert len(s) == len(list(s))
        s.set_epoch(3)
        assert len(s) == len(list(s))
        assert len(BucketBatchSampler(LENGTHS[:n], 32, seed=0, shuffle=False)) == len(
            list(BucketBatchSampler(LENGTHS[:n], 32, seed=0, shuffle=False)))


def test_window_one_is_plain_shuffled_batches():
    """window=1 (task.bucket_window=1): batch_size runs of one seeded permutation, HF Trainer's
    sampler; lengths play no part, so the padding is that of random batches."""
    for epoch in (0, 1):
        batches = bucketed_batches(LENGTHS, 32, seed=1, epoch=epoch, window=1)
        order = np.random.default_rng([1, epoch, 0xB0C]).permutation(len(LENGTHS))
        runs = [order[i:i + 32] for i in range(0, len(order), 32)]
        assert sorted(sorted(b.tolist()) for b in batches) == sorted(sorted(r.tolist()) for r in runs)
        assert padding_fraction(LENGTHS, batches) == padding_fraction(LENGTHS, runs) > 0.4
    s = BucketBatchSampler(LENGTHS, 32, seed=0, window=1)
    assert len(s) == len(list(s)) == 32  # ceil(1003 / 32)
