"""Where a run keeps its frames between stages: one file per chunk or partition piece, in a
directory every process of the run can reach, so no process holds the whole audience.

Frames are pickled (protocol 5): they come back exactly as they went, whatever dtypes a CRM's
columns have. Only this run's own processes write there. The directory is removed when the run
ends, and a new run of the campaign removes what a crashed one left.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


def campaign_dir(root: str | Path, campaign_id: str) -> Path:
    """The folder of one campaign's runs under `root` (a slug of its id, and a hash of it so
    that two ids with the same slug never share one)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", campaign_id)[:60].strip("-") or "campaign"
    digest = uuid.uuid5(uuid.NAMESPACE_URL, campaign_id).hex[:8]
    return Path(root) / f"{slug}-{digest}"


@dataclass(frozen=True)
class Store:
    """One run's frames, by name (`chunk-00003`, `part-00012/ready`, ...)."""

    root: str

    @classmethod
    def for_run(cls, root: str | Path, campaign_id: str, holder: str) -> Store:
        """A fresh store for one attempt of a campaign's run; the campaign's earlier leftovers
        (a crashed attempt's) are removed first: the campaign's lease makes this run its only
        user."""
        folder = campaign_dir(root, campaign_id)
        shutil.rmtree(folder, ignore_errors=True)
        run = folder / re.sub(r"[^A-Za-z0-9_-]+", "-", holder)
        run.mkdir(parents=True, exist_ok=True)
        return cls(str(run))

    def path(self, name: str) -> Path:
        """The file of one frame."""
        return Path(self.root) / f"{name}.pkl"

    def write(self, name: str, frame: pd.DataFrame) -> None:
        """Store a frame under `name`, replacing any: written aside, then renamed, so a reader
        never sees half a file."""
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        with partial.open("wb") as out:
            pickle.dump(frame, out, protocol=5)
        os.replace(partial, path)

    def read(self, name: str) -> pd.DataFrame:
        """The frame stored under `name`."""
        with self.path(name).open("rb") as stored:
            frame = pickle.load(stored)  # only this run's own processes write here
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{self.path(name)} does not hold a frame")
        return frame

    def names(self, folder: str) -> list[str]:
        """The names stored in a folder, sorted."""
        base = Path(self.root) / folder
        if not base.is_dir():
            return []
        return sorted(f"{folder}/{p.stem}" for p in base.glob("*.pkl"))

    def remove(self, name: str) -> None:
        """Forget one frame."""
        self.path(name).unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove the run's folder and everything in it, and the campaign's folder once empty."""
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(OSError):  # another attempt's folder is still there
            Path(self.root).parent.rmdir()
