"""Model families (`model=`): one class per family over transformers' classes, one interface.

A family turns cfg.model into a transformers model (random init, or `model.pretrained=PATH`: a
local HF checkpoint folder or an nlpx run directory, whose config.json then decides the
architecture) and tells the objectives where the parts they need are, so no objective names a
family. Every family has:

  name                the `model=` option: bert, roberta, albert, deberta, electra, gpt2, roformer
  decoder             True only for decoder-only (causal) families: gpt2
  uses_token_types    False where the family has no segment embeddings (roberta, deberta, gpt2);
                      encoder(model) then ignores token_type_ids, so objectives may always pass them
  positions           the valid values of model.position_embedding, the default first:
                      (learned, sinusoidal) for bert/roberta/electra/albert/gpt2, (relative,) for
                      deberta, (rotary,) for roformer

  hf_config(vocab_size, pad_token_id)   the transformers config (the checkpoint's when pretrained)
  pretraining_class(nsp)                the transformers class to pretrain: MLM + HF pair head where
                                        HF has one and nsp=True (BERT: NSP, ALBERT: SOP), else the
                                        MLM class; gpt2: the causal LM class whatever nsp is
  build(config, nsp)                    pretraining_class(nsp)(config) with nlpx's own parts applied
                                        (a frozen sinusoidal table); works on the meta device
  pretraining_model(tokenizer, *, nsp)  the model to train (train mode): random init or checkpoint

  encoder(model)      callable(input_ids=, attention_mask=, token_type_ids=) -> output with
                      .last_hidden_state [B, T, H] (and .pooler_output, None where no pooler)
  mlm_head(model)     callable(hidden [..., H]) -> vocab logits; None for gpt2
  lm_head(model)      gpt2's next-token head, hidden -> vocab logits; None for the encoders
  pair_head(model)    HF's 2-way head on the pooled vector: BERT cls.seq_relationship, ALBERT
                      sop_classifier; None where the family (or the class built: nsp=False) has
                      none, and the objective adds its own head. nsp_head is an alias.
  base_class          the bare encoder class (BertModel, DebertaV2Model, ...)
  rtd_class           HF's encoder + replaced-token-detection head class where HF has one
                      (ElectraForPreTraining), else None and the RTD objective adds its own head
  embedding_width_key the config key of a factorised embedding width (embedding_size: electra,
                      albert, deberta, roformer): the generator of RTD keeps the discriminator's
                      embedding width through it and projects to its own hidden size; None where
                      the family has none (bert, roberta): embeddings are hidden_size wide
  load_model(tokenizer, cls)            a `cls` model (pretraining_class, discriminator_class, ...)
  rtd_head(model)     HF's RTD head (ELECTRA's discriminator_predictions) or None
  embedding_tables(model)               {"word", "position", "token_type"}: the input tables
                      that exist and are trained (a frozen sinusoidal table is left out)
  pooled(encoder_output, attention_mask=None)
                      the vector pair_head expects: pooler_output where the model has a pooler,
                      else the first ([CLS]) position; for a decoder the last (non-padding)
                      position, the only one that has seen the whole sequence

Fixed sinusoidal positions (model.position_embedding=sinusoidal) are the original Transformer's
PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)), written into the
family's learned position table, which is then frozen (requires_grad False). config.json records
`nlpx_position_embedding: sinusoidal`, so nlpx re-freezes the table when it loads the checkpoint;
plain transformers loads the same values as an ordinary (trainable) table.
"""

from __future__ import annotations

from nlpx.errors import UserError
from nlpx.models.attention_pattern import MODEL_TYPES as PATTERN_MODEL_TYPES
from nlpx.models.attention_scale import ATTENTION_CLASSES
from nlpx.pretrained import resolve_pretrained

# the cfg.model keys that BERT-like configs take under the same name
BERT_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
             "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
             "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_eps")
NO_TYPES_KEYS = tuple(k for k in BERT_KEYS if k != "type_vocab_size")  # families with a fixed one

# transformers' model_type -> nlpx family, to name the right model= for a checkpoint
FAMILY_OF_MODEL_TYPE = {"bert": "bert", "roberta": "roberta", "albert": "albert", "deberta-v2": "deberta",
                        "electra": "electra", "gpt2": "gpt2", "roformer": "roformer", "nlpx_gau": "gau",
                        "longformer": "longformer", "big_bird": "bigbird", "xlnet": "xlnet"}


def transformers_class(name: str):
    """A class of transformers by name, or of nlpx by its dotted path (GAU's)."""
    import importlib

    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module or "transformers"), attr)


def sinusoidal_table(rows: int, dim: int, offset: int = 0):
    """[rows, dim] float64: row offset + pos holds PE(pos); the rows before offset are zero."""
    import torch

    pos = torch.arange(rows - offset, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # 10000^(2i/d)
    table = torch.zeros(rows, dim, dtype=torch.float64)
    table[offset:, 0::2] = torch.sin(pos / freq)
    table[offset:, 1::2] = torch.cos(pos / freq[: dim // 2])
    return table


def cls_sep_special_ids(self, config, tokenizer) -> None:
    """tokenizer_fields of the families whose config names sep/bos/eos ids and whose inputs are
    [CLS] ... [SEP] (longformer, bigbird): the tokenizer's, not the config class's defaults."""
    config.sep_token_id = tokenizer.sep_token_id
    config.bos_token_id = tokenizer.cls_token_id
    config.eos_token_id = tokenizer.sep_token_id


class _WithoutTokenTypes:
    """The base model called without token_type_ids (and with fixed extra arguments).

    For families without segment embeddings: RoBERTa's single-row table would fail on segment
    id 1, and GPT-2 would add its *word* embedding of token 0 for token_type_ids of zeros.
    Attributes (embeddings, config, ...) are the base model's.
    """

    def __init__(self, module, **fixed):
        self.module = module
        self.fixed = fixed

    def __call__(self, *args, token_type_ids=None, **kwargs):
        return self.module(*args, **kwargs, **self.fixed)

    def __getattr__(self, name):
        return getattr(self.__dict__["module"], name)


class Family:
    name = "?"
    decoder = False
    uses_token_types = True
    positions = ("learned", "sinusoidal")
    model_type = "?"           # transformers' model_type of the checkpoints this family loads
    config_class = "?"         # transformers class names, imported when first used
    mlm_class = "?"
    pair_class: str | None = None
    base_class = "?"
    rtd_class: str | None = None
    embedding_width_key: str | None = "embedding_size"
    config_keys = BERT_KEYS    # the cfg.model keys passed to the config under their own names
    scales_attention_itself = False  # True where the model class computes log_n (GAU), not nlpx's hooks
    permutation_only = False   # True: pretrained by the permutation LM alone (XLNet's two-stream attention)

    def __init__(self, cfg):
        self.cfg = cfg
        self.pretrained = resolve_pretrained(cfg.pretrained)
        self.position_embedding = str(cfg.get("position_embedding") or self.positions[0])
        if self.position_embedding not in self.positions:
            raise UserError(f"model.position_embedding={self.position_embedding}: not available for "
                            f"model={self.name} (valid: {', '.join(self.positions)})")
        self.attention_scale = str(cfg.get("attention_scale") or "sqrt_d")
        if self.attention_scale == "log_n" and not (self.scales_attention_itself or self.model_type in ATTENTION_CLASSES):
            raise UserError(f"model.attention_scale=log_n: not available for model={self.name} "
                            f"(valid: sqrt_d; log_n: bert, roberta, albert, electra, roformer, deberta, gau)")
        self.attention_pattern = str(cfg.get("attention_pattern") or "full")
        if self.attention_pattern != "full" and self.model_type not in PATTERN_MODEL_TYPES:
            raise UserError(f"model.attention_pattern={self.attention_pattern}: not available for model={self.name} "
                            f"(valid: full; patterns: bert, roberta, albert, electra, roformer)")

    # -- building -------------------------------------------------------------------------------
    def config_fields(self, pad_token_id: int) -> dict:
        """Config fields from cfg.model (the family's own ones added by each subclass)."""
        return {k: self.cfg[k] for k in self.config_keys}

    def hf_config(self, vocab_size: int, pad_token_id: int):
        if self.pretrained is not None:
            return self.checkpoint_config()
        fields = self.config_fields(pad_token_id)
        if self.position_embedding == "sinusoidal":
            fields["nlpx_position_embedding"] = "sinusoidal"
        if self.attention_scale == "log_n":
            fields["nlpx_attention_scale"] = "log_n"
            fields["nlpx_scale_train_length"] = int(self.cfg.scale_train_length)
        if self.attention_pattern != "full":
            fields["nlpx_attention_pattern"] = self.attention_pattern
            fields.update({f"nlpx_{k}": int(self.cfg[k]) for k in ("window", "dilation", "global_tokens")})
        return transformers_class(self.config_class)(
            vocab_size=vocab_size, pad_token_id=pad_token_id,
            attn_implementation=self.cfg.attn_implementation, **fields)

    def checkpoint_config(self):
        from nlpx.pretrained import checkpoint_config

        config = checkpoint_config(self.pretrained)
        if config.model_type != self.model_type:
            family = FAMILY_OF_MODEL_TYPE.get(config.model_type)
            hint = f"use model={family}" if family else "no nlpx family loads it"
            raise UserError(f"model.pretrained={self.cfg.pretrained}: a '{config.model_type}' checkpoint, "
                            f"not {self.name} ({hint})")
        return config

    def reference(self, vocab_size: int, pad_token_id: int):
        """(name, model) of a standard family that `nlpx config` counts next to this one; None here."""
        return None

    def pretraining_class(self, nsp: bool):
        """The MLM + pair-head class where HF has one and nsp is asked for, else the MLM class."""
        return transformers_class(self.pair_class if nsp and self.pair_class else self.mlm_class)

    def discriminator_class(self):
        return transformers_class(self.rtd_class or self.base_class)

    def build(self, config, nsp: bool, cls=None):
        return self.finish((cls or self.pretraining_class(nsp))(config))

    def pretraining_model(self, tokenizer, *, nsp: bool):
        return self.load_model(tokenizer, self.pretraining_class(nsp))

    def load_model(self, tokenizer, cls):
        """A `cls` model (train mode): random init from cfg.model, or the checkpoint's weights."""
        if self.pretrained is None:
            config = self.hf_config(len(tokenizer), tokenizer.pad_token_id)
            self.tokenizer_fields(config, tokenizer)
            return self.build(config, False, cls)
        self.checkpoint_config()  # the right family for this checkpoint
        model = cls.from_pretrained(str(self.pretrained), attn_implementation=self.cfg.attn_implementation)
        return self.finish(model).train()  # from_pretrained returns eval mode; dropout must be on

    def tokenizer_fields(self, config, tokenizer) -> None:
        """Config fields that come from the tokenizer beyond vocab size and pad id (gpt2's bos/eos)."""

    def finish(self, model):
        """nlpx's parts the HF class lacks, from the config: the frozen sinusoidal table, the
        hooks of the log_n attention scale and of an attention pattern.

        Runs after random init and after from_pretrained (which makes every table trainable)."""
        from nlpx.models.attention_scale import restore

        restore(model)
        if getattr(model.config, "nlpx_position_embedding", "learned") == "sinusoidal":
            import torch

            weight = self.position_table(model).weight
            if not weight.is_meta:
                table = sinusoidal_table(weight.shape[0], weight.shape[1], self.position_offset(model.config))
                with torch.no_grad():
                    weight.copy_(table.to(weight.dtype))
            weight.requires_grad_(False)
        return model

    def position_table(self, model):
        """The learned absolute position table (an nn.Embedding)."""
        return self.base(model).embeddings.position_embeddings

    @staticmethod
    def position_offset(config) -> int:
        """Table row of position 0 (RoBERTa counts positions from pad_id + 1)."""
        return 0

    def export_tokenizer(self, tokenizer):
        """The tokenizer written next to the model in hf/: the one it trained with."""
        return tokenizer

    # -- the parts objectives use ---------------------------------------------------------------
    def base(self, model):
        """The bare encoder inside a task model, or the model itself when it is one."""
        return model.base_model

    def encoder(self, model):
        base = self.base(model)
        return base if self.uses_token_types else _WithoutTokenTypes(base)

    def mlm_head(self, model):
        raise NotImplementedError

    def lm_head(self, model):
        return None

    def pair_head(self, model):
        return None

    def nsp_head(self, model):
        return self.pair_head(model)

    def rtd_head(self, model):
        return None

    def embedding_tables(self, model) -> dict:
        emb = self.base(model).embeddings
        tables = {"word": emb.word_embeddings,
                  "position": getattr(emb, "position_embeddings", None),
                  "token_type": getattr(emb, "token_type_embeddings", None) if self.uses_token_types else None}
        return {k: t for k, t in tables.items() if t is not None and t.weight.requires_grad}

    def pooled(self, encoder_output, attention_mask=None):
        pooled = getattr(encoder_output, "pooler_output", None)
        if pooled is not None:
            return pooled
        return encoder_output.last_hidden_state[:, 0]
