"""GAU-α (model=gau) as transformers classes: an encoder of gated attention units.

transformers has no GAU model, so nlpx defines one here (config + PreTrainedModel classes, so that
save_pretrained / from_pretrained, the Auto classes and every nlpx objective work on it unchanged);
`import nlpx.models` registers them with the Auto classes. Formulas (CONCEPTS.md, "GAU / GAU-α";
Hua et al. 2022 "Transformer Quality in Linear Time"; Su's GAU-α), for input X [T, H]:

  U = φ(X W_u), V = φ(X W_v)              [T, e], e = intermediate_size (model.expansion · H)
  Z = φ(X W_z)                             [T, s], s = qk_dim (128), one head
  Q = RoPE(Z ⊙ γ_q + β_q), K = RoPE(Z ⊙ γ_k + β_k)
  A = softmax(c · Q Kᵀ)                    gau_attention=softmax (GAU-α): c = 1/√s, or with
                                           attention_scale=log_n c = log(n)/log(n₀) / √s for a query
                                           with n unmasked keys, n₀ = scale_train_length
  A = relu²(Q Kᵀ / n + b)                  gau_attention=relu2 (FLASH): b a learned bias per
                                           relative distance j − i, n the query's unmasked keys
  O = (U ⊙ A V) W_o
  X ← norm(X + dropout(O))                 post-norm as GAU-α: x / sqrt(mean(x²) + ε), no scale or
                                           offset parameters

φ = hidden_act (SiLU). W_u, W_v, W_z are one [H, 2e + s] projection and, as in GAU-α, no
projection has a bias. Embeddings: token + segment tables (embedding_size wide), the same norm,
dropout, then a projection to H where embedding_size ≠ H (ELECTRA's factorisation, so that RTD's
narrower generator can share the discriminator's token table). No absolute positions: RoPE only,
computed for any length (so sequences longer than max_position_embeddings run; relu2's bias
clamps distances beyond it). The MLM head is BERT's: dense + act + LayerNorm, then the tied token
table and a bias. There is no pooler: the pooled vector is the first ([CLS]) position.

A GAU layer has about 3·e·H + s·H + e·H = 6H² + 128·H parameters at e = 2H, half a Transformer
layer's 12H², hence the presets' twice as many layers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import (BaseModelOutputWithPooling, MaskedLMOutput,
                                           SequenceClassifierOutput)
from transformers.models.roformer.modeling_roformer import RoFormerSelfAttention

MODEL_TYPE = "nlpx_gau"
ATTENTIONS = ("softmax", "relu2")


@strict
class GauConfig(PreTrainedConfig):
    model_type = MODEL_TYPE

    vocab_size: int = 30522
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 1  # one head of width qk_dim (nlpx's RTD generator sizing reads it)
    intermediate_size: int = 256  # e, the width of U and V
    qk_dim: int = 128
    embedding_size: int | None = None
    gau_attention: str = "softmax"
    hidden_act: str = "silu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    classifier_dropout: float | int | None = None
    # the keys nlpx's attention_scale option writes for every family; GAU reads them itself
    nlpx_attention_scale: str = "sqrt_d"
    nlpx_scale_train_length: int = 512
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        if self.gau_attention not in ATTENTIONS:
            raise ValueError(f"gau_attention={self.gau_attention!r}: valid are {ATTENTIONS}")
        if self.num_attention_heads != 1:
            raise ValueError(f"num_attention_heads={self.num_attention_heads}: a GAU layer has one head")
        self.embedding_size = self.hidden_size if self.embedding_size is None else self.embedding_size
        super().__post_init__(**kwargs)


class GauNorm(nn.Module):
    """GAU-α's norm: x / sqrt(mean(x²) + ε) over the last dimension, no parameters."""

    def __init__(self, eps: float):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), eps=self.eps)


def rotary_table(length: int, dim: int, device, dtype) -> torch.Tensor:
    """[length, dim]: sin(p·θ_i) in the first half, cos(p·θ_i) in the second, θ_i = 10000^(−2i/dim),
    the layout transformers' RoFormer rotation (apply_rotary_position_embeddings) takes."""
    # in float64 (a [length, dim] table): float32 angles of positions in the thousands lose digits
    pos = torch.arange(length, device=device, dtype=torch.float64)[:, None]
    theta = 10000.0 ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float64) / dim)
    angles = pos * theta
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)


class GauEmbeddings(nn.Module):
    def __init__(self, config: GauConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.embedding_size)
        self.LayerNorm = GauNorm(config.layer_norm_eps)  # named as BERT's: SiFT perturbs its output
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.project = (nn.Linear(config.embedding_size, config.hidden_size)
                        if config.embedding_size != config.hidden_size else None)

    def forward(self, input_ids=None, token_type_ids=None, inputs_embeds=None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        x = self.dropout(self.LayerNorm(inputs_embeds + self.token_type_embeddings(token_type_ids)))
        return self.project(x) if self.project is not None else x


class ScaleOffset(nn.Module):
    """Z ⊙ γ + β, per dimension (γ = 1, β = 0 at init, as GAU-α)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, z):
        return z * self.weight + self.bias


class GauLayer(nn.Module):
    def __init__(self, config: GauConfig):
        super().__init__()
        self.e, self.s = config.intermediate_size, config.qk_dim
        self.i_dense = nn.Linear(config.hidden_size, 2 * self.e + self.s, bias=False)
        self.o_dense = nn.Linear(self.e, config.hidden_size, bias=False)
        self.q_scale_offset, self.k_scale_offset = ScaleOffset(self.s), ScaleOffset(self.s)
        self.act = ACT2FN[config.hidden_act]
        self.softmax = config.gau_attention == "softmax"
        self.log_n = math.log(config.nlpx_scale_train_length) if config.nlpx_attention_scale == "log_n" else None
        self.max_distance = config.max_position_embeddings - 1
        if not self.softmax:  # FLASH's relative-position bias b[j - i]
            self.relative_bias = nn.Parameter(torch.zeros(2 * self.max_distance + 1))
        self.attention_dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.norm = GauNorm(config.layer_norm_eps)

    def attention(self, q, k, allowed, n):
        """A [B, T, T] from rotated Q, K [B, T, s]; allowed [B, 1, T] (key j attendable), n [B, 1, 1]."""
        logits = torch.matmul(q, k.transpose(-1, -2))
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # half precision: in fp32
        if self.softmax:
            scale = 1.0 / math.sqrt(self.s)
            if self.log_n is not None:
                # log 1 = 0: a query with one key attends to it whatever the scale
                logits = logits * (n.clamp(min=1).log() / self.log_n)
            logits = (logits * scale).masked_fill(~allowed, torch.finfo(logits.dtype).min)
            return logits.softmax(-1)
        t = q.shape[1]
        pos = torch.arange(t, device=q.device)
        distance = (pos[None, :] - pos[:, None]).clamp(-self.max_distance, self.max_distance) + self.max_distance
        return F.relu(logits / n.clamp(min=1) + self.relative_bias[distance].to(logits.dtype)).square() * allowed

    def forward(self, x, allowed, n, rope):
        u, v, z = torch.split(self.act(self.i_dense(x)), [self.e, self.e, self.s], dim=-1)
        q, k = RoFormerSelfAttention.apply_rotary_position_embeddings(
            rope, self.q_scale_offset(z), self.k_scale_offset(z))
        a = self.attention(q, k, allowed, n)
        o = self.o_dense(u * torch.matmul(self.attention_dropout(a).to(v.dtype), v))
        return self.norm(x + self.dropout(o)), a


class GauPreTrainedModel(PreTrainedModel):
    config_class = GauConfig
    base_model_prefix = "gau"
    # the log_n scale is computed inside GauLayer, not by nlpx's hooks on transformers' attention
    nlpx_scales_attention_itself = True

    def _init_weights(self, module):
        super()._init_weights(module)
        from transformers import initialization as init

        if isinstance(module, ScaleOffset):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, GauLayer) and not module.softmax:
            init.zeros_(module.relative_bias)
        elif isinstance(module, GauMLMHead):
            init.zeros_(module.bias)


class GauModel(GauPreTrainedModel):
    def __init__(self, config: GauConfig):
        super().__init__(config)
        self.embeddings = GauEmbeddings(config)
        self.layers = nn.ModuleList(GauLayer(config) for _ in range(config.num_hidden_layers))
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        x = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, inputs_embeds=inputs_embeds)
        b, t = x.shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(b, t, dtype=torch.long, device=x.device)
        allowed = attention_mask.bool()[:, None, :]              # [B, 1, T]
        n = allowed.sum(-1, keepdim=True).float()                 # [B, 1, 1]
        rope = rotary_table(t, self.config.qk_dim, x.device, x.dtype)
        hidden, attentions = (x,) if output_hidden_states else None, () if output_attentions else None
        for layer in self.layers:
            x, a = layer(x, allowed, n, rope)
            if output_hidden_states:
                hidden += (x,)
            if output_attentions:
                attentions += (a,)
        return BaseModelOutputWithPooling(last_hidden_state=x, pooler_output=None, hidden_states=hidden,
                                          attentions=attentions)


class GauMLMHead(nn.Module):
    """BERT's prediction head: dense + act + LayerNorm to the embedding width, then the tied table."""

    def __init__(self, config: GauConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.act = ACT2FN["gelu"]
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden):
        return self.decoder(self.LayerNorm(self.act(self.dense(hidden)))) + self.bias


class GauForMaskedLM(GauPreTrainedModel):
    _tied_weights_keys = {"cls.decoder.weight": "gau.embeddings.word_embeddings.weight"}

    def __init__(self, config: GauConfig):
        super().__init__(config)
        self.gau = GauModel(config)
        self.cls = GauMLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.decoder = new_embeddings

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None,
                labels=None, output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        out = self.gau(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                       inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                       output_hidden_states=output_hidden_states)
        logits = self.cls(out.last_hidden_state)
        loss = None if labels is None else F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), labels.view(-1))
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


class GauForSequenceClassification(GauPreTrainedModel):
    """Dropout + linear on the first ([CLS]) position; the losses of BertForSequenceClassification."""

    def __init__(self, config: GauConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.gau = GauModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None,
                labels=None, output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        out = self.gau(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                       inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                       output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(out.last_hidden_state[:, 0]))
        loss = None
        if labels is not None:
            problem = self.config.problem_type or (
                "regression" if self.num_labels == 1 else "single_label_classification"
                if labels.dtype in (torch.long, torch.int) else "multi_label_classification")
            if problem == "regression":
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.float().view(-1))
            elif problem == "single_label_classification":
                loss = F.cross_entropy(logits.view(-1, self.num_labels).float(), labels.view(-1))
            else:
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                        attentions=out.attentions)


def register() -> None:
    """GAU's classes with transformers' Auto classes (AutoConfig, AutoModel, AutoModelForMaskedLM,
    AutoModelForSequenceClassification), once per process."""
    from transformers import (AutoConfig, AutoModel, AutoModelForMaskedLM,
                              AutoModelForSequenceClassification)
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if MODEL_TYPE in CONFIG_MAPPING:
        return
    AutoConfig.register(MODEL_TYPE, GauConfig)
    AutoModel.register(GauConfig, GauModel)
    AutoModelForMaskedLM.register(GauConfig, GauForMaskedLM)
    AutoModelForSequenceClassification.register(GauConfig, GauForSequenceClassification)
