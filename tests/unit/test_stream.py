"""The (epoch, index) stream: resumable, rank-partitioned, seeded; and the collator."""

import numpy as np
import torch

from nlpx.data.dataset import Collator, StreamSampler


def keys(**kw):
    return list(StreamSampler(10, batch_size=4, total_batches=8, seed=3, **kw))


def test_epochs_are_permutations_and_differ():
    stream = keys()
    assert len(stream) == 32
    first, second = [i for e, i in stream if e == 0], [i for e, i in stream if e == 1]
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert first != second


def test_resume_yields_exactly_the_rest():
    assert keys(start_batch=3) == keys()[12:]
    assert len(StreamSampler(10, batch_size=4, total_batches=8, seed=3, start_batch=3)) == 32


def test_ranks_partition_the_stream_batch_by_batch():
    r0 = keys(rank=0, world_size=2)
    r1 = keys(rank=1, world_size=2)
    single = list(StreamSampler(10, batch_size=4, total_batches=16, seed=3))
    interleaved = [k for b in range(8) for k in r0[4 * b:4 * b + 4] + r1[4 * b:4 * b + 4]]
    assert interleaved == single


def test_same_seed_same_stream_other_seed_other_stream():
    assert keys() == keys()
    assert keys() != list(StreamSampler(10, batch_size=4, total_batches=8, seed=4))


def test_collator_pads_dynamically():
    examples = [{"input_ids": np.array([2, 7, 3]), "token_type_ids": np.array([0, 0, 0]),
                 "labels": np.array([-100, 7, -100])},
                {"input_ids": np.array([2, 3]), "token_type_ids": np.array([0, 0]),
                 "labels": np.array([-100, -100])}]
    batch = Collator(pad_id=0)(examples)
    assert batch["input_ids"].tolist() == [[2, 7, 3], [2, 3, 0]]
    assert batch["labels"].tolist() == [[-100, 7, -100], [-100, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["input_ids"].dtype == torch.long
