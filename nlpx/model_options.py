"""The valid values of model options that config validation checks before anything heavy is
imported (nlpx.models imports transformers)."""

SCALES = ("sqrt_d", "log_n")                                # model.attention_scale
PATTERNS = ("full", "local", "dilated", "global_local")     # model.attention_pattern
GAU_ATTENTIONS = ("softmax", "relu2")                       # model.gau_attention
