"""Xen Orchestra's count of VDIs to coalesce, with XO's own walk (xo_count.py)."""

import pandas as pd

from runbook_lib.xo_count import XO_WARNING_AT, xo_chains

SR = "sr-1"


def _vdis(*rows):
    """rows: (uuid, parent, managed, is_a_snapshot[, sr])"""
    return pd.DataFrame([{"uuid": r[0], "vhd_parent": r[1], "managed": r[2], "is_a_snapshot": r[3],
                          "sr": r[4] if len(r) > 4 else SR} for r in rows])


def test_a_base_with_one_leaf_is_one_to_coalesce():
    xo = xo_chains(_vdis(("B", None, False, False), ("L", "B", True, False)), SR)
    assert (xo.to_coalesce, xo.lengths, xo.unknown_parent) == (1, {"L": 1}, {})


def test_a_base_with_a_leaf_and_a_snapshot_waits_for_nothing():
    xo = xo_chains(_vdis(("B", None, False, False), ("L", "B", True, False), ("S", "B", True, True)), SR)
    assert (xo.to_coalesce, xo.lengths) == (0, {})


def test_a_chain_of_two_single_child_bases_counts_both():
    xo = xo_chains(_vdis(("B1", None, False, False), ("B2", "B1", False, False), ("L", "B2", True, False)), SR)
    assert (xo.to_coalesce, xo.lengths) == (2, {"L": 2})


def test_an_unknown_parent_is_listed_and_other_srs_do_not_count():
    frame = _vdis(("L", "gone", True, False), ("B", None, False, False, "sr-2"), ("M", "B", True, False, "sr-2"))
    xo = xo_chains(frame, SR)
    # XO groups by vhd-parent first: the missing parent "has" one child, so it counts too
    assert (xo.to_coalesce, xo.lengths, xo.unknown_parent) == (1, {"L": 1}, {"L": "gone"})
    assert xo_chains(frame, "sr-2").to_coalesce == 1


def test_lengths_follow_xos_order_and_its_shared_count_but_the_total_does_not():
    """B1 <- B2 <- {L, X}, X (hidden) <- M: XO shares one running count per chain top, so a VDI
    walked after M's branch reads that branch's count too."""
    frame = _vdis(("B1", None, False, False), ("B2", "B1", False, False), ("L", "B2", True, False),
                  ("X", "B2", False, False), ("M", "X", True, False))
    first_l = xo_chains(frame, SR, order=["B1", "B2", "L", "X", "M"])
    first_m = xo_chains(frame, SR, order=["B1", "B2", "M", "X", "L"])
    assert first_l.to_coalesce == first_m.to_coalesce == 2          # X and B1
    assert first_l.lengths == {"L": 1, "M": 2}
    assert first_m.lengths == {"M": 2, "L": 2}


def test_a_vhd_parent_loop_ends():
    xo = xo_chains(_vdis(("A", "C", True, False), ("C", "A", False, False)), SR)
    assert xo.to_coalesce == 2 and xo.unknown_parent == {"A": "A"}


def test_the_warning_starts_at_xos_limit():
    rows = [("B%d" % i, None, False, False) for i in range(XO_WARNING_AT)]
    rows += [("L%d" % i, "B%d" % i, True, False) for i in range(XO_WARNING_AT)]
    xo = xo_chains(_vdis(*rows), SR)
    assert xo.to_coalesce == XO_WARNING_AT and xo.warning
    assert not xo_chains(_vdis(*rows[:-1]), SR).warning
