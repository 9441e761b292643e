"""Models, data sets and rewards: loading, the hub caches, precision, the reward functions."""
