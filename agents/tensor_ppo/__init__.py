"""``tensor-ppo``: PPO on the tensor engine (:mod:`.ppo`) and its networks (:mod:`.networks`)."""
