"""Sentence embeddings: pooling a model's hidden states into one vector per sentence (shared by
`nlpx eval sts` and the contrastive objectives), and the contrastive training pieces."""
