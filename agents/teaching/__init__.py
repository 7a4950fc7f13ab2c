"""Teachers in training: curricula choosing the level of every reset."""
