"""The stable-baselines3 learners: model building from a config, the registry entries, the services callback, saved zips, the features extractor."""
