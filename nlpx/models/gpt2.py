"""GPT-2 (model=gpt2): decoder-only, causal LM (GPT2LMHeadModel), learned absolute positions.

Pre-LayerNorm blocks with a causal mask; the LM head is tied to the word embeddings. It has no
MLM head (mlm_head is None): a decoder is trained by next-token prediction through lm_head.
"""

from __future__ import annotations

from nlpx.models.family import Family, _WithoutTokenTypes

# cfg.model key -> GPT2Config field (GPT-2 names them its own way)
GPT2_KEYS = {"num_hidden_layers": "n_layer", "hidden_size": "n_embd", "num_attention_heads": "n_head",
             "intermediate_size": "n_inner", "hidden_act": "activation_function",
             "hidden_dropout_prob": "resid_pdrop", "attention_probs_dropout_prob": "attn_pdrop",
             "max_position_embeddings": "n_positions", "initializer_range": "initializer_range",
             "layer_norm_eps": "layer_norm_epsilon"}


class Gpt2Family(Family):
    name = "gpt2"
    decoder = True
    uses_token_types = False
    model_type = "gpt2"
    config_class = "GPT2Config"
    mlm_class = "GPT2LMHeadModel"  # the causal LM class, whatever nsp is
    base_class = "GPT2Model"
    embedding_width_key = None

    def config_fields(self, pad_token_id: int) -> dict:
        fields = {hf: self.cfg[key] for key, hf in GPT2_KEYS.items()}
        fields["embd_pdrop"] = self.cfg.hidden_dropout_prob
        # GPT-2's defaults (50256) are ids of its own 50k vocabulary; pretraining_model sets the
        # tokenizer's, if it has them
        fields["bos_token_id"] = fields["eos_token_id"] = None
        return fields

    def tokenizer_fields(self, config, tokenizer) -> None:
        config.bos_token_id = tokenizer.bos_token_id
        config.eos_token_id = tokenizer.eos_token_id

    def position_table(self, model):
        return self.base(model).wpe

    def encoder(self, model):
        return _WithoutTokenTypes(self.base(model), use_cache=False)  # no KV cache when training

    def mlm_head(self, model):
        return None

    def lm_head(self, model):
        return model.lm_head

    def pooled(self, encoder_output, attention_mask=None):
        """The last non-padding position (the last position without a mask): under the causal mask
        the only one that has seen the whole sequence."""
        hidden = encoder_output.last_hidden_state
        if attention_mask is None:
            return hidden[:, -1]
        import torch

        last = attention_mask.long().cumsum(-1).argmax(-1)  # the last position with mask 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
