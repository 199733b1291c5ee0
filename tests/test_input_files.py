"""runbook_lib.input_files: a file an admin names either parses or fails in one line."""

import os

import pytest

from runbook_lib.errors import InputError
from runbook_lib.input_files import check_output_file, read_json, read_yaml


def test_a_good_file_parses(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": [1, 2]}')
    assert read_json(path, "inventory") == {"a": [1, 2]}


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "inventory file not found: "),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_text("{nope"), "cannot read inventory file "),
    (lambda p: p.write_bytes(b"\xff\xfe\x00"), "is not JSON text: it holds NUL bytes"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n"), "is not JSON text: byte 0x89 at offset 0 is not UTF-8"),
    (lambda p: p.write_bytes(b'{"a": "\xe9t\xe9"}'), "is not JSON text: byte 0xe9 at offset 7"),
    (lambda p: os.mkfifo(p), "is a FIFO (named pipe), not a file"),
])
def test_bad_files_are_one_line_input_errors(tmp_path, make, message):
    path = tmp_path / "x.json"
    make(path)
    with pytest.raises(InputError) as err:
        read_json(path, "inventory")
    assert message in str(err.value) and "\n" not in str(err.value) and err.value.exit_code == 2


def test_a_utf8_bom_is_not_an_error(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert read_json(path, "inventory") == {"a": 1}


def test_a_character_device_is_refused_without_reading_it():
    with pytest.raises(InputError, match=r"^inventory file /dev/zero is a character device, not a file$"):
        read_json("/dev/zero", "inventory")


@pytest.mark.parametrize("content,message", [
    (b"\x00\x01\x02", "parameters file {p} is not YAML/JSON text: it holds NUL bytes (a binary file?)"),
    (b"a: [1,\n",
     "parameters file {p} is not valid YAML (line 2: expected the node content, but found '<stream end>')"),
])
def test_yaml_files_fail_in_one_line(tmp_path, content, message):
    path = tmp_path / "p.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_yaml(path, "parameters")
    assert str(err.value) == message.format(p=path)


def test_an_output_path_must_be_a_file_to_replace(tmp_path):
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    for path, why in ((tmp_path, "it is a directory; give a file name"),
                      (tmp_path / "fifo", "it is a FIFO (named pipe), not a file"),
                      ("/dev/null", "it is a character device, not a file"),
                      (tmp_path / "file" / "plan.json", f"{tmp_path / 'file'} is not a directory")):
        with pytest.raises(InputError) as err:
            check_output_file(path, "the plan")
        assert str(err.value) == f"cannot write the plan to {path}: {why}"
    assert check_output_file(tmp_path / "new" / "plan.json", "the plan") == tmp_path / "new" / "plan.json"
    assert check_output_file("/dev/null", "the call log", replace=False)
