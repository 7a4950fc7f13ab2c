"""What a learner trains on: the training vector env, with a curriculum teacher choosing its levels, or a dream of a world model."""
