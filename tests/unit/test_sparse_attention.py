"""model=longformer and model=bigbird: the config nlpx builds (Longformer's whole window is twice
model.window; BigBird block-sparse with nlpx's block and random blocks), BigBird kept block-sparse
on short batches by padding (its real tokens get exactly what an explicitly padded input gives),
Longformer's global tokens put in when the caller passes none, and the options they do not read."""

import pytest
import torch

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.models.sparse_attention import sparse_minimum
from tests.unit.test_attention_scale import family_for, ids
from tests.unit.test_attention_scale import model as build


def test_longformer_window_is_twice_the_keys_on_each_side():
    _, model = build("longformer", "model.window=8")
    assert model.config.attention_window == [16, 16] and model.config.nlpx_global_tokens == 1


def test_bigbird_defaults_stay_block_sparse_from_113_tokens():
    _, model = build("bigbird")
    c = model.config
    assert (c.attention_type, c.block_size, c.num_random_blocks) == ("block_sparse", 16, 1)
    assert (5 + 2 * c.num_random_blocks) * c.block_size == 112 and sparse_minimum(c) == 128


def test_a_short_bigbird_batch_is_padded_not_switched_to_full_attention():
    family, model = build("bigbird")
    x, mask = ids(2, 40, lengths=[40, 25])
    with torch.no_grad():
        short = family.encoder(model)(input_ids=x, attention_mask=mask).last_hidden_state
    assert model.base_model.attention_type == "block_sparse" and short.shape == (2, 40, 128)
    padded_x = torch.cat([x, torch.zeros(2, 88, dtype=x.dtype)], 1)
    padded_mask = torch.cat([mask, torch.zeros(2, 88, dtype=mask.dtype)], 1)
    with torch.no_grad():
        long = family.encoder(model)(input_ids=padded_x, attention_mask=padded_mask).last_hidden_state
    assert torch.equal(short, long[:, :40])
    # the same through the inputs_embeds path (RTD's discriminator) and a positional input_ids
    with torch.no_grad():
        words = model.base_model.embeddings.word_embeddings(x)
        by_embeds = family.encoder(model)(inputs_embeds=words, attention_mask=mask).last_hidden_state
        positional = model.base_model(x, attention_mask=mask).last_hidden_state
    assert torch.allclose(by_embeds, short, atol=1e-6, rtol=0) and torch.equal(positional, short)


def test_longformer_gives_the_first_token_global_attention_when_the_caller_does_not():
    family, model = build("longformer", "model.window=4")
    x, mask = ids(2, 24, lengths=[24, 13])
    glob = torch.zeros_like(mask)
    glob[:, 0] = 1
    with torch.no_grad():
        implicit = family.encoder(model)(input_ids=x, attention_mask=mask).last_hidden_state
        explicit = family.encoder(model)(input_ids=x, attention_mask=mask, global_attention_mask=glob).last_hidden_state
        none = family.encoder(model)(input_ids=x, attention_mask=mask,
                                     global_attention_mask=torch.zeros_like(mask)).last_hidden_state
    assert torch.equal(implicit, explicit) and not torch.allclose(implicit, none)


@pytest.mark.parametrize("name,overrides,message", [
    ("bigbird", ["model.window=8"], "model.window=8: not read by model=bigbird"),
    ("bigbird", ["model.global_tokens=2"], "model.global_tokens=2: not read by model=bigbird"),
    ("bigbird", ["model.block_size=0"], "model.block_size=0: give an integer >= 1"),
    ("longformer", ["model.dilation=2"], "model.dilation=2: not read by model=longformer"),
    ("longformer", ["model.attention_pattern=local"], "model.attention_pattern=local: not available for model=longformer"),
    ("longformer", ["model.attention_scale=log_n"], "model.attention_scale=log_n: not available for model=longformer"),
])
def test_options_they_do_not_read_are_errors(name, overrides, message):
    with pytest.raises(UserError, match=message):
        family_for(compose([f"model={name}", *overrides], runnable=False).model)
