"""The run machinery every learner shares: config, the learner registry, checkpoints, the run dir, run services, the training loop."""
