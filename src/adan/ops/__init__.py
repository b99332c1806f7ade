"""Operational plumbing: experiment-tracking loggers, run directories and the like.

Nothing is imported here: the entry points import ``adan.ops.run_dir`` before Hydra parses the
command line, and that must not pull in Lightning or wandb.
"""
