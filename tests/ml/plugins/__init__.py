"""Models defined outside ml/: what a user brings, named by the `model` hyperparameter."""
