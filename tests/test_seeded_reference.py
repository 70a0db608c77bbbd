"""Seeded runs reproduce the numbers recorded before the engine was reorganised
(``tests/seeded_reference.py``): same episode returns, same metrics to float32 rounding."""

from __future__ import annotations

import json
import math

import pytest

from tests.seeded_reference import CASES, PATH, run_case

RECORDED = json.loads(PATH.read_text())


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_seeded_run_reproduces_the_recorded_numbers(name):
    got, want = run_case(CASES[name]), RECORDED[name]
    assert got["evaluation"] == want["evaluation"]
    for k, (g, w) in enumerate(zip(got["updates"], want["updates"], strict=True), start=1):
        assert g["returns"] == w["returns"], f"update {k}: episode returns differ"
        assert set(g["metrics"]) == set(w["metrics"]), f"update {k}: metric names differ"
        differ = {
            n: (g["metrics"][n], w["metrics"][n])
            for n in w["metrics"]
            if not _close(g["metrics"][n], w["metrics"][n])
        }
        assert not differ, f"update {k}: {differ}"
