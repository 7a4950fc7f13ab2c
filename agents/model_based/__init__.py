"""Model-based learners: the world-model trainer, Dreamer and its actor-critic, behaviour policies, loading a run's world model."""
