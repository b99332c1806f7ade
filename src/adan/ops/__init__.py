"""Operational plumbing: experiment-tracking loggers and the like."""

from adan.ops.wandb_logger import wandb_logger

__all__ = ["wandb_logger"]
