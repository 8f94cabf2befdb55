"""Pure pieces of campaign files (aid2e.campaign_file), without files or Ax."""

from __future__ import annotations


def test_a_constraint_with_fixed_values_is_rewritten_for_ax():
    """Ax refuses a fixed parameter in a constraint (the issue's own example file names one):
    its value moves to the right-hand side."""
    from aid2e.campaign_file import constraint_for_ax

    parameters = {"a": {"bounds": [0, 1]}, "b": {"bounds": [0, 1]}, "gap": {"value": 2.5}}
    assert constraint_for_ax("a + gap <= 6.0", parameters) == "1.0*a <= 3.5"
    assert constraint_for_ax("2*a - 0.5*b >= -1", parameters) == "2.0*a - 0.5*b >= -1.0"
    assert constraint_for_ax("-a + 2e1*b - gap <= 4", parameters) == "-1.0*a + 20.0*b <= 6.5"
    assert constraint_for_ax("gap <= 3", parameters) is None  # always met
