"""Replaced-token detection (objective=rtd): ELECTRA (Clark et al. 2020) and DeBERTaV3 (He et al.
2021), with the embedding-sharing modes of nlpx.objectives.embedding_sharing (nes, es, gdes).

One step, on a batch masked by the shared masking code (labels = original id at the selected
positions C, -100 elsewhere):
  1. generator (an MLM model of the same family, sized by objective.generator.depth_ratio and
     width_ratio) on X~_G:  L_MLM = mean_{i in C} -log p_G(x_i | X~_G)
  2. at every i in C a token sampled from softmax(logits_G / temperature) (optionally never the
     original), with no gradient; X~_D = the original tokens with C replaced by the samples
  3. label_i = 1 ("replaced") iff X~_D_i != x_i: a sample equal to the original is "original"
  4. discriminator on X~_D:  L_RTD = mean over non-pad tokens of BCE(logit_i, label_i)
  5. L = L_MLM + λ L_RTD, λ = objective.rtd_weight (50, ELECTRA; DeBERTa's code uses 10)

The discriminator is the run's model (exported to hf/, what `nlpx eval glue` fine-tunes): HF's
ElectraForPreTraining for model=electra, else the family's bare encoder with nlpx's RTD head (the
same two-layer head as ELECTRA's, transformers' ElectraDiscriminatorPredictions, saved as
nlpx_heads.safetensors). The generator lives in this objective and is exported to hf/generator/
as the family's masked-LM model.

Widths: the generator's hidden size is width_ratio x the discriminator's. Families with a
factorised embedding width (electra, albert, deberta, roformer: config embedding_size) keep the
discriminator's embedding width in the generator and project it to the generator's hidden size
(their own embedding projection), so the tables can be shared at any width. bert and roberta
embed at hidden_size: there es and gdes need width_ratio 1 (nes works at any width).

Gradient diagnostics (on the steps that are logged): the gradient the token embedding gets from
each loss as it enters L (the RTD one scaled by λ): grad/emb_from_mlm, grad/emb_from_rtd (norms)
and grad/emb_cosine. The RTD part is read exactly at the discriminator's token lookup (the only
place L_RTD reaches a token table); the MLM part is the generator table's gradient, minus the RTD
part under es where both land on one tensor. Under es the cosine is the "tug of war" of
DeBERTaV3; under nes and gdes the two gradients land on different tensors (E_G and E_D or E_Δ)
and the cosine says how they would have fought.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nlpx.errors import UserError
from nlpx.objectives import embedding_sharing as sharing
from nlpx.objectives.mlm import MaskedLM


def sample_replacements(logits: torch.Tensor, originals: torch.Tensor, *, temperature: float = 1.0,
                        exclude_original: bool = False) -> torch.Tensor:
    """One token per row of `logits` [n, V] from softmax(logits / temperature); no gradient."""
    with torch.no_grad():
        scores = logits.detach().float() / temperature
        if exclude_original:
            scores = scores.scatter(1, originals[:, None], float("-inf"))
        return torch.multinomial(torch.softmax(scores, dim=-1), 1).squeeze(1)


def discriminator_inputs(input_ids: torch.Tensor, labels: torch.Tensor, sampled: torch.Tensor):
    """(X~_D, original tokens, replaced labels) from the masked batch and the samples at C."""
    selected = labels != -100
    original = torch.where(selected, labels, input_ids)
    corrupted = original.clone()
    corrupted[selected] = sampled
    return corrupted, original, corrupted != original


def rtd_metrics(logits: torch.Tensor, replaced: torch.Tensor, real: torch.Tensor) -> dict:
    """Loss, accuracy, replaced fraction, precision and recall (positive class: replaced) over
    the non-pad tokens, with the counts that weight each in a validation mean."""
    z, y = logits[real].float(), replaced[real]
    loss = F.binary_cross_entropy_with_logits(z, y.float())
    predicted = z > 0
    tp = (predicted & y).sum()
    n, n_pred, n_true = int(y.numel()), int(predicted.sum()), int(y.sum())
    return {"disc/rtd_loss": loss, "disc/rtd_acc": (predicted == y).float().mean(),
            "disc/replaced_fraction": y.float().mean(),
            "disc/precision": tp.float() / max(n_pred, 1), "disc/recall": tp.float() / max(n_true, 1),
            "_disc/rtd_count": n, "_disc/replaced_count": n, "_disc/precision_count": n_pred,
            "_disc/recall_count": n_true}


def generator_config(disc_config, depth_ratio: float, width_ratio: float, width_key: str | None):
    """The discriminator's HF config scaled: layers x depth_ratio, hidden x width_ratio (heads
    keep their width where they can, as ELECTRA's generator: heads = hidden / 64 for 64-wide
    heads), FFN scaled with the hidden size; the embedding width kept where width_key exists."""
    fields = disc_config.to_dict()
    layers, hidden = disc_config.num_hidden_layers, disc_config.hidden_size
    head_dim = hidden // disc_config.num_attention_heads
    g_layers = max(1, round(layers * depth_ratio))
    g_hidden = max(1, round(hidden * width_ratio))
    heads = max(1, round(g_hidden / head_dim))
    g_hidden = heads * max(1, g_hidden // heads)
    fields.update(num_hidden_layers=g_layers, hidden_size=g_hidden, num_attention_heads=heads,
                  intermediate_size=max(1, round(disc_config.intermediate_size * g_hidden / hidden)))
    if width_key:
        fields[width_key] = getattr(disc_config, width_key, None) or hidden
    if fields.get("num_hidden_groups") == layers:  # ALBERT without sharing: one group per layer
        fields["num_hidden_groups"] = g_layers
    if isinstance(fields.get("attention_window"), list):  # Longformer's model wrote one window per layer
        fields["attention_window"] = fields["attention_window"][:1] * g_layers
    fields.pop("architectures", None)
    return type(disc_config).from_dict(fields)


class ReplacedTokenDetection(MaskedLM):
    name = "rtd"
    monitor = "disc/rtd_loss"

    @classmethod
    def model_class(cls, family):
        return family.discriminator_class()

    def __init__(self, cfg, family):
        super().__init__(cfg, family)
        self.mode = str(cfg.sharing)
        if self.mode not in sharing.SHARING:
            raise UserError(f"objective.sharing={self.mode}: unknown (valid: {', '.join(sharing.SHARING)})")
        self.rtd_weight = float(cfg.rtd_weight)
        self.temperature = float(cfg.sampling.temperature)
        self.exclude_original = bool(cfg.sampling.exclude_original)
        g = cfg.generator
        self.depth_ratio, self.width_ratio = float(g.depth_ratio), float(g.width_ratio)
        for key, value in (("rtd_weight", self.rtd_weight), ("sampling.temperature", self.temperature),
                           ("generator.depth_ratio", self.depth_ratio), ("generator.width_ratio", self.width_ratio)):
            if not (value > 0 or key == "rtd_weight" and value == 0) or not math.isfinite(value):
                raise UserError(f"objective.{key}={value}: must be a positive number")
        if str(cfg.masking.strategy) == "none":
            raise UserError("objective.masking.strategy=none: rtd needs masked positions for its "
                            "generator (valid: token, whole_word, span)")
        self._rtd_grad: torch.Tensor | None = None

    # -- building -----------------------------------------------------------------------------
    def attach(self, model) -> None:
        """Build the generator for the discriminator `model`, share the tables, add the head."""
        family = self.family
        self.generator = self._generator(model)
        tables, gen_tables = family.embedding_tables(model), family.embedding_tables(self.generator)
        if self.mode != "nes" and gen_tables["word"].weight.shape != tables["word"].weight.shape:
            raise UserError(
                f"objective.sharing={self.mode} with objective.generator.width_ratio={self.width_ratio}: "
                f"model={family.name} embeds tokens at its hidden size, so the generator's table is "
                "narrower than the discriminator's and cannot be shared; use width_ratio=1, "
                "objective.sharing=nes, or a family with an embedding projection (electra, deberta, "
                "albert, roformer)")
        owner = family.base(model).embeddings
        # a discriminator from a checkpoint keeps its tables (GDES: E_Δ = E_D - E_G); a new one
        # starts from E_Δ = 0
        self.shared_tables = sharing.share(self.mode, gen_tables, owner, tables, keep=family.pretrained is not None)
        # (generator's, discriminator's) token tables, one module under es; a tuple, so that
        # nn.Module does not register them twice
        self._words = (gen_tables["word"], owner.word_embeddings)
        if family.rtd_head(model) is None:
            from transformers.models.electra.modeling_electra import ElectraDiscriminatorPredictions

            self.rtd_head = ElectraDiscriminatorPredictions(model.config)
            std = getattr(model.config, "initializer_range", 0.02)
            for layer in (self.rtd_head.dense, self.rtd_head.dense_prediction):
                nn.init.normal_(layer.weight, std=std)
                nn.init.zeros_(layer.bias)

    def _generator(self, disc):
        family = self.family
        path = self.cfg.generator.get("pretrained")
        if not path and family.pretrained is not None and (family.pretrained / "generator" / "config.json").is_file():
            path = family.pretrained / "generator"
        cls = family.pretraining_class(False)
        if path:
            from transformers import AutoConfig

            from nlpx.pretrained import resolve_pretrained

            path = str(resolve_pretrained(path))
            if torch.empty(0).is_meta:  # `nlpx config` counts on the meta device: no weights to load
                return family.build(AutoConfig.from_pretrained(path), False, cls)
            generator = cls.from_pretrained(path, attn_implementation=family.cfg.attn_implementation)
            return family.finish(generator).train()
        config = generator_config(disc.config, self.depth_ratio, self.width_ratio, family.embedding_width_key)
        return family.build(config, False, cls)

    # -- the step -----------------------------------------------------------------------------
    def forward(self, model, batch) -> dict:
        ids, labels, attn = batch["input_ids"], batch["labels"], batch["attention_mask"]
        types = batch.get("token_type_ids")
        enc = self.family.encoder
        hidden = enc(self.generator)(input_ids=ids, attention_mask=attn, token_type_ids=types).last_hidden_state
        selected = labels != -100
        gen_logits = self.family.mlm_head(self.generator)(hidden[selected])
        targets = labels[selected]
        mlm_loss = F.cross_entropy(gen_logits.float(), targets)
        result = {"gen/mlm_loss": mlm_loss,
                  "gen/mlm_acc": (gen_logits.argmax(-1) == targets).float().sum() / max(int(targets.numel()), 1),
                  "_gen/mlm_count": int(targets.numel())}

        sampled = sample_replacements(gen_logits, targets, temperature=self.temperature,
                                      exclude_original=self.exclude_original)
        corrupted, _, replaced = discriminator_inputs(ids, labels, sampled)
        # the token lookup done here (the model adds positions and segments) so that the gradient
        # L_RTD gives the token table can be read exactly where it enters (see the docstring)
        words = self._words[1](corrupted)
        if self.training and self.log_due and words.requires_grad:
            words.register_hook(self._rtd_lookup_hook(corrupted))
        logits = self.discriminate(model, words, attn, types)
        result.update(rtd_metrics(logits, replaced, attn.bool()))
        result["loss"] = mlm_loss + self.rtd_weight * result["disc/rtd_loss"]
        return result

    def discriminate(self, model, words: torch.Tensor, attn, types) -> torch.Tensor:
        out = self.family.encoder(model)(inputs_embeds=words, attention_mask=attn, token_type_ids=types)
        return self.rtd_logits(model, out.last_hidden_state)

    def common_metrics(self, model, batches) -> dict[str, float]:
        """The generator's MLM loss and accuracy on the common set's masked inputs; the
        discriminator's ROC-AUC and accuracy on its fixed replaced inputs (every non-pad token,
        positive = replaced), the same for every sharing mode."""
        from sklearn.metrics import roc_auc_score

        loss, correct, count, scores, truth = 0.0, 0.0, 0, [], []
        enc = self.family.encoder
        for b in batches:
            attn, types, labels = b["attention_mask"], b["token_type_ids"], b["labels"]
            hidden = enc(self.generator)(input_ids=b["input_ids"], attention_mask=attn,
                                         token_type_ids=types).last_hidden_state
            selected = labels != -100
            logits = self.family.mlm_head(self.generator)(hidden[selected]).float()
            targets = labels[selected]
            n = int(targets.numel())
            loss += float(F.cross_entropy(logits, targets, reduction="sum"))
            correct, count = correct + float((logits.argmax(-1) == targets).sum()), count + n
            z = self.discriminate(model, self._words[1](b["replaced_ids"]), attn, types)
            real = attn.bool()
            scores.append(z[real].float().cpu())
            truth.append((b["replaced_ids"] != b["original_ids"])[real].cpu())
        z, y = torch.cat(scores), torch.cat(truth)
        return {"common_gen_mlm_loss": loss / max(count, 1), "common_gen_mlm_acc": correct / max(count, 1),
                "common_disc_auc": float(roc_auc_score(y.numpy(), z.numpy())),
                "common_disc_acc": float(((z > 0) == y).float().mean())}

    def rtd_logits(self, model, hidden: torch.Tensor) -> torch.Tensor:
        """[B, T] logits of "replaced" from the discriminator's last hidden states."""
        return (self.family.rtd_head(model) or self.rtd_head)(hidden)

    # -- gradient diagnostics -----------------------------------------------------------------
    def _rtd_lookup_hook(self, ids: torch.Tensor):
        def hook(grad: torch.Tensor) -> None:
            g = grad.detach().reshape(-1, grad.shape[-1]).float()
            if self._rtd_grad is None:
                rows = self._words[0].num_embeddings
                self._rtd_grad = torch.zeros(rows, g.shape[1], device=g.device)
            self._rtd_grad.index_add_(0, ids.reshape(-1), g)

        return hook

    def optimizer_step_metrics(self, trainer) -> dict:
        """Per-source gradient norms and cosine on the token embedding for this optimizer step
        (after accumulation and AMP unscaling, before clipping). {} when not collected."""
        rtd, self._rtd_grad = self._rtd_grad, None
        gen_table = self._words[0].weight
        if rtd is None or gen_table.grad is None:
            return {}
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None:  # Lightning unscaled .grad; the hook saw the scaled gradient
            rtd = rtd / scaler.get_scale()
        if trainer.world_size > 1:  # .grad is the mean over ranks; so is this, then
            rtd = trainer.strategy.reduce(rtd, reduce_op="mean")
        mlm = gen_table.grad.detach().float()
        if self.mode == "es":
            mlm = mlm - rtd
        if mlm.shape != rtd.shape:
            return {"grad/emb_from_mlm": mlm.norm(), "grad/emb_from_rtd": rtd.norm()}
        return {"grad/emb_from_mlm": mlm.norm(), "grad/emb_from_rtd": rtd.norm(),
                "grad/emb_cosine": F.cosine_similarity(mlm.flatten(), rtd.flatten(), dim=0)}

    # -- export and summary -------------------------------------------------------------------
    def export_state(self, model) -> dict | None:
        """The discriminator's state with GDES tables materialised as E_G + E_Δ."""
        return sharing.materialised_state(model) if self.mode == "gdes" else None

    def export_heads(self, target, tokenizer=None) -> None:
        from pathlib import Path

        head = getattr(self, "rtd_head", None)
        if head is not None:
            self.save_heads(target, {f"rtd_head.{k}": v for k, v in head.state_dict().items()},
                            note="ELECTRA's RTD head (transformers' ElectraDiscriminatorPredictions) on "
                                 "the discriminator's last hidden states: logit of 'replaced'")
        folder = Path(target) / "generator"
        self.generator.save_pretrained(str(folder), safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(folder))

    def describe(self, model) -> dict:
        c = self.generator.config
        return {"rtd": {
            "sharing": self.mode, "shared_tables": list(self.shared_tables), "rtd_weight": self.rtd_weight,
            "discriminator_parameters": sum(p.numel() for p in model.parameters()),
            "generator": {"layers": c.num_hidden_layers, "hidden_size": c.hidden_size,
                          "attention_heads": c.num_attention_heads,
                          "embedding_width": self._words[0].embedding_dim,
                          "parameters": sum(p.numel() for p in self.generator.parameters())}}}
