"""runbook_lib.input_files: a JSON file an admin names either parses or fails in one line."""

import pytest

from runbook_lib.errors import InputError
from runbook_lib.input_files import read_json


def test_a_good_file_parses(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": [1, 2]}')
    assert read_json(path, "inventory") == {"a": [1, 2]}


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "inventory file not found: "),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_text("{nope"), "cannot read inventory file "),
    (lambda p: p.write_bytes(b"\xff\xfe\x00"), "cannot read inventory file "),
])
def test_bad_files_are_one_line_input_errors(tmp_path, make, message):
    path = tmp_path / "x.json"
    make(path)
    with pytest.raises(InputError) as err:
        read_json(path, "inventory")
    assert message in str(err.value) and "\n" not in str(err.value) and err.value.exit_code == 2
