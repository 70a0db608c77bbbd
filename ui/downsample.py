"""Keep live charts light: at most a few thousand points per trace."""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_POINTS = 1000


def downsample(df: pd.DataFrame, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """At most ``max_points`` rows of ``df``, evenly spaced, always keeping the first and last.

    Rows are picked at indices round(linspace(0, n − 1, max_points)), so the shape of a long
    curve survives, its end points are exact, and a trace never grows past the bound however long
    the run trains.
    """
    n = len(df)
    if n <= max_points:
        return df
    if max_points < 2:
        raise ValueError("max_points must be at least 2 (first and last point)")
    idx = np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))
    return df.iloc[idx]
