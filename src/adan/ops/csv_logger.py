"""Lightning's CSVLogger, except that an existing ``metrics.csv`` is continued, not deleted.

Lightning deletes ``metrics.csv`` when its directory already holds files. A run resumed into
its own run directory (``hydra.run.dir=<run> ckpt_path=<run>/checkpoints/last.ckpt``) would
lose the history it resumes; here the rows already written stay and the resumed run's rows
follow them (rows an interrupted attempt logged after its last checkpoint stay too, with the
same steps as the rows that replace them).
"""

from __future__ import annotations

import csv
from typing import Any

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class _ContinuingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = sorted(header)


class ContinuingCSVLogger(CSVLogger):
    @property
    def experiment(self) -> Any:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment
