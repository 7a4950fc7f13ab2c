"""Learning from a teacher's actions: demonstrations as Minari datasets, behavioural cloning, DAgger, the intelligent expert."""
