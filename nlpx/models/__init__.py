"""Model families (`model=`). Importing the package registers nlpx's own transformers classes
(GAU-α, model=gau) with transformers' Auto classes, so that an exported GAU checkpoint loads with
`AutoModel.from_pretrained` after `import nlpx.models` — never with trust_remote_code. The CLI's
start-up and config validation import nothing from this package (nlpx.model_options holds the
option names they check), so they do not pay for importing transformers."""

from nlpx.models.gau_modeling import register as _register_gau

_register_gau()
