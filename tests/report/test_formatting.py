import math

from medbench.report.formatting import fci, fnum, fp, fpm, fsig, seconds


def test_numbers_and_undefined_values():
    assert fnum(0.12345) == "0.123" and fnum(2, 1) == "2.0"
    assert fnum(math.nan) == fnum(None) == fnum("x") == "n/a"
    assert fsig(1234.5678) == "1235" and fsig(0.000123456, 2) == "0.00012"
    assert fsig(math.inf) == "n/a"


def test_spread_and_interval_leave_out_what_is_undefined():
    assert fpm(0.9, 0.0123) == "0.900 ± 0.012"
    assert fpm(0.9, math.nan) == "0.900"  # one fold: no spread
    assert fpm(math.nan, 0.1) == "n/a"
    assert fci(0.1, 0.25) == "[0.100, 0.250]" and fci(0.1, math.nan) == ""


def test_p_values_and_durations():
    assert fp(0.0004) == "< 0.001" and fp(0.04567) == "0.0457" and fp(math.nan) == "n/a"
    assert seconds(5) == "5.00 s" and seconds(150) == "2.5 min" and seconds(7200) == "2.00 h"
