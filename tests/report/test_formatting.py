import math

from medbench.report.formatting import (
    fci,
    fcount,
    fnum,
    fp,
    fpercent,
    fpm,
    fquartiles,
    fsig,
    fsigned,
    seconds,
)


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
    assert fci(0.594, 0.594) == "(no interval: no spread)"  # never "[0.594, 0.594]"


def test_p_values_and_durations():
    assert fp(0.0004) == "< 0.001" and fp(0.04567) == "0.0457" and fp(math.nan) == "n/a"
    assert seconds(5) == "5.00 s" and seconds(150) == "2.5 min" and seconds(7200) == "2.00 h"


def test_differences_probabilities_quartiles_and_counts():
    assert fsigned(0.0123) == "+0.012" and fsigned(-0.5) == "-0.500" and fsigned(math.nan) == "n/a"
    assert fpercent(0.456) == "46%" and fpercent(0.001) == "< 1%" and fpercent(0.999) == "> 99%"
    assert fquartiles(2.0, 1.0, 3.5) == "2.000 (1.000–3.500)"
    assert fquartiles(2.0, 2.0, 2.0) == "2.000"  # one fold: no spread
    assert fquartiles(60, 30, 90, seconds) == "60.00 s (30.00 s–90.00 s)"
    assert fcount(1234567) == "1,234,567" and fcount(math.nan) == "n/a"
