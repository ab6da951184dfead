"""Optional packages: declared at the top, imported on first use, one line when missing."""

from __future__ import annotations

import sys

import pytest

from medbench.errors import MedbenchError
from medbench.optional import MissingDependency, is_available, lazy_import, require


def test_a_lazy_module_is_imported_on_first_attribute_read(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    colorsys = lazy_import("colorsys")
    assert "colorsys" not in sys.modules
    assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules


def test_a_missing_package_is_one_line_naming_the_extra():
    ray = lazy_import("medbench_no_such_package", extra="ray")
    with pytest.raises(MissingDependency, match=r"pip install 'medbench\[ray\]'") as err:
        ray.init()
    assert isinstance(err.value, MedbenchError)  # the CLI prints it as one line, exit 2
    assert "\n" not in str(err.value)


def test_require_and_is_available():
    assert require("json").dumps([1]) == "[1]"
    assert is_available("json")
    assert not is_available("medbench_no_such_package")
    with pytest.raises(MissingDependency, match="pip install medbench_no_such_package"):
        require("medbench_no_such_package.sub")
