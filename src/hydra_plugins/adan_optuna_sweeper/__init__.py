"""ADAN's Optuna sweeper for Hydra: hydra-optuna-sweeper's, with pruning, resumable studies
without duplicate proposals, trial provenance, multi-seed objectives and a sweep report."""
