"""Plain-text tables: columns as wide as their widest cell, by terminal columns."""

from __future__ import annotations

from modelstore.cli._table import display_width, table_lines


def test_display_width_counts_terminal_columns() -> None:
    assert display_width("K(892)") == 6
    assert display_width("α⃗") == 1  # the arrow combines with the α
    assert display_width("模型") == 4  # wide characters take two columns
    assert display_width("ᾱz ×10⁻³") == 8


def test_columns_fit_the_widest_cell_and_align() -> None:
    lines = table_lines(
        [["name", "value"], ["", "units"]],
        [["a-long-resonance-name(1405)", "1.5"], ["模型", "-12.25"], ["short"]],
        [True, False],
    )
    name = "a-long-resonance-name(1405)"  # 27 columns: the first column's width
    assert lines[0] == "  " + "name".ljust(27) + "  " + " value"  # "-12.25": 6 columns
    assert lines[1] == "  " + " " * 27 + "  " + " units"
    assert lines[2] == "  " + name + "  " + "   1.5"
    assert lines[3] == "  " + "模型" + " " * 23 + "  " + "-12.25"
    assert {display_width(line) for line in lines[:4]} == {2 + 27 + 2 + 6}
    assert lines[4] == "  short"  # missing cells are empty, trailing spaces dropped
