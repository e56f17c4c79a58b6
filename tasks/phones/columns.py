"""Writing the stage's columns into a chunk by row position, keeping them Arrow-backed strings."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from connectors.vocabulary import DUPLICATE_OF, OUTCOME, PHONE_E164, REASON

_WRITTEN: Final = (PHONE_E164, OUTCOME, REASON, DUPLICATE_OF)


def empty_strings(length: int) -> pd.Series[str]:
    """An all-null Arrow-backed string column of this length."""
    return pd.Series(index=pd.RangeIndex(length), dtype="str")


def writable(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the frame whose stage columns exist and hold strings."""
    out = frame.copy(deep=False)
    for column in _WRITTEN:
        if column not in out.columns:
            out[column] = empty_strings(len(out)).array
        elif not isinstance(out[column].dtype, pd.StringDtype):
            out[column] = out[column].astype("str")
    return out


def write(
    out: pd.DataFrame, column: str, rows: npt.NDArray[np.intp], values: pd.Series[str] | str
) -> None:
    """Set `column` at these row positions, whatever the index labels are."""
    if len(rows) == 0:
        return
    array = out[column].array.copy()
    array[rows] = values.array if isinstance(values, pd.Series) else values
    out[column] = array
