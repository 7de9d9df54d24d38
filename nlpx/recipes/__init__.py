"""One module per command, each reading top to bottom: check and set up, fit or evaluate, export,
summarize (on nlpx.run.lifecycle.Run)."""
