"""Training one model: the sweep's jobs, the Optuna study and refit, and the worker's ``train_one``."""
