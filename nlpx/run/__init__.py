"""What every command shares: the run lifecycle (run directory, loggers, summary) and the
LightningModule base (seeding, optimizer and schedule, throughput and lr logging)."""
