"""The jobs the entry points run, on top of the library: train (one fit, or a walk-forward
over folds) and evaluate a checkpoint on held-out data. Nothing below imports from here."""
