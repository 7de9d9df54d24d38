"""XLNet's permutation language modelling (objective=plm, model=xlnet).

max E_z sum_{t > c} log p(x_{z_t} | x_{z<t}): the targets (the last 1/K of a sampled factorisation
order, XLNet's span rule) are predicted by the query stream of XLNetLMHeadModel, which sees only
their positions and the content of the tokens before them in the order (nlpx/data/permutation.py).
The inputs are never corrupted; there is no [MASK] token in a step.
"""

from __future__ import annotations

import torch.nn.functional as F

from nlpx.errors import UserError
from nlpx.objectives.base import PretrainObjective


class PermutationLM(PretrainObjective):
    name = "plm"
    monitor = "plm_loss"
    permutation = True

    @classmethod
    def check_family(cls, family, objective_name: str) -> None:
        if not family.permutation_only:
            raise UserError(f"objective={objective_name} needs XLNet's two-stream attention: use model=xlnet "
                            f"(model={family.name} has none)")

    @classmethod
    def examples(cls, instances, tokenizer, cfg, *, seed: int, stream: int, train: bool):
        from nlpx.data.permutation import PermutedExamples

        return PermutedExamples(instances, tokenizer, k=int(cfg.plm_k), max_span=int(cfg.max_span_length),
                                seed=seed, stream=stream, static=not train or cfg.mode == "static")

    @classmethod
    def collator(cls, tokenizer):
        from nlpx.data.permutation import PermutationCollator

        return PermutationCollator(tokenizer.pad_token_id)

    def forward(self, model, batch) -> dict:
        out = model.transformer(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                                attention_mask=batch["attention_mask"], perm_mask=batch["perm_mask"],
                                target_mapping=batch["target_mapping"], use_mems=False)
        labels = batch["labels"]
        selected = labels != -100
        # the vocabulary projection only on the query-stream rows that hold a target
        logits = self.family.mlm_head(model)(out.last_hidden_state[selected])
        targets = labels[selected]
        if targets.numel() == 0:  # no example of the batch had a token to predict (all special)
            loss = out.last_hidden_state.sum() * 0.0
            return {"loss": loss, "plm_loss": loss, "plm_acc": loss, "_plm_count": 0}
        loss = F.cross_entropy(logits.float(), targets)
        correct = (logits.argmax(-1) == targets).sum()
        return {"loss": loss, "plm_loss": loss, "plm_acc": correct.float() / max(int(targets.numel()), 1),
                "_plm_count": int(targets.numel())}
