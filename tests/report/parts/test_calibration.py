import numpy as np

from medbench.metrics import expected_calibration_error
from medbench.report.parts import calibration


def test_reliability_bins_match_the_ece_binning():
    y = np.array([0, 1, 1, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.55, 0.58, 0.95, 1.0])
    bins = calibration.reliability(y, p)
    used = bins[bins["n"] > 0]
    ece = (used["n"] * (used["observed_rate"] - used["mean_predicted"]).abs()).sum() / len(y)
    assert ece == expected_calibration_error(y, p)
    assert bins.loc[9, "n"] == 2  # p = 1.0 falls in the last bin
