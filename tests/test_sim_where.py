"""get_all_records_where's filter language (xapi's Db_filter), as the simulator reads it."""

import pytest

from runbook_lib.sim.model import ApiFailure
from runbook_lib.sim.where import predicate

RECORD = {"name": "SM_GC_NO_SPACE", "cls": "SR", "priority": 3, "managed": False, "name_label": "disk"}


@pytest.mark.parametrize("expr, expected", [
    ('field "cls" = "SR"', True),
    ('field "cls" = "VM"', False),
    ('field "priority" = "3"', True),
    ('field "managed" = "false"', True),
    ('field "name__label" = "disk"', True),
    ('field "cls" = "VM" or field "name" = "SM_GC_NO_SPACE"', True),
    ('field "cls" = "SR" and field "name" = "other"', False),
    ('not (field "cls" = "VM")', True),
    ('true', True),
    ('false or (field "cls" = "SR" and not false)', True),
    ('field "missing" = "x"', False),
])
def test_filters(expr, expected):
    assert predicate(expr)(RECORD) is expected


@pytest.mark.parametrize("expr", ['field "cls" =', 'cls = "SR"', 'field "cls" = "SR" or', "(true", "true true", "%"])
def test_bad_filters_are_refused_as_xapi_refuses_them(expr):
    with pytest.raises(ApiFailure):
        predicate(expr)
