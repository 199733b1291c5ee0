"""Notebook 03's dry-run plot: each SR's free space as the plan expects it after every step."""

import json

import pytest

from runbook_lib.transfer.plan_steps import expected_free, plan_steps, sr_names
from runbook_lib.transfer_display import expected_free_frame, expected_free_space_figure


@pytest.fixture
def plan(data_dir):
    return json.loads((data_dir / "transfer" / "plan_copy.json").read_text())


def test_one_point_per_sr_now_and_after_each_step_ending_where_the_plan_ends(plan):
    steps = plan_steps(plan)
    frame = expected_free_frame(plan, steps)
    srs = set(sr_names(plan))
    assert len(frame) == (len(steps) + 1) * len(srs) and set(frame["sr"]) == srs
    assert list(frame.drop_duplicates("position")["step"]) == ["now"] + [s.id.split(":", 1)[1] for s in steps]
    start, end = expected_free(plan, []), expected_free(plan, steps)
    for sr in srs:
        points = frame[frame["sr"] == sr].sort_values("position")["free"].tolist()
        assert (points[0], points[-1]) == (start[sr], end[sr])
    # the staging SR dips while it holds the copy: the plot shows the low point, not only the ends
    staging = plan["staging_sr"]["uuid"]
    assert frame[frame["sr"] == staging]["free"].min() < start[staging]


def test_the_figure_draws_a_line_per_sr_labelled_by_step(plan):
    import matplotlib.pyplot as plt

    steps = plan_steps(plan)
    fig = expected_free_space_figure(plan, steps)
    ax = fig.axes[0]
    assert sorted(line.get_label() for line in ax.get_lines()) == sorted(sr_names(plan).values())
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["now", steps[0].id.split(":", 1)[1]]
    plt.close(fig)
