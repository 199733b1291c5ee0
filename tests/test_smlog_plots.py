"""The timeline figure: one bar series per count, an empty log gets a note instead of axes."""

import matplotlib

matplotlib.use("Agg")

from runbook_lib.smlog import diagnose, read_smlog, sample_path  # noqa: E402
from runbook_lib.smlog.plots import plot_timeline  # noqa: E402


def test_timeline_bars_match_the_counts():
    tl = diagnose(read_smlog(sample_path())).timeline
    fig = plot_timeline(tl)
    ax = fig.axes[0]
    heights = [[p.get_height() for p in c.patches] for c in ax.containers]
    assert heights == [list(tl["gc_runs"]), list(tl["coalesces"]), list(tl["failures"])]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GC runs", "coalesces finished", "coalesce failures"]


def test_empty_timeline(tmp_path):
    (tmp_path / "SMlog").write_text("")
    fig = plot_timeline(diagnose(read_smlog([tmp_path / "SMlog"])).timeline)
    assert "no timed GC events" in fig.axes[0].texts[0].get_text()
