"""nlpx: a command-line experiment runner for NLP pretraining and fine-tuning research."""

__version__ = "0.1.0"
