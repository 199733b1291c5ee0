"""runbook_lib.audit.params: names checked, -p values typed by the notebook, credentials refused."""

import pytest

from runbook_lib.audit import params
from runbook_lib.errors import CredentialError, InputError, UsageError
from tests.conftest import DATA

OK = DATA / "notebooks" / "ok.ipynb"
CREDS = DATA / "notebooks" / "credentials.ipynb"


def test_declared_parameters_come_from_the_parameters_cell():
    declared = params.declared_parameters(OK)
    assert {n: d["inferred_type_name"] for n, d in declared.items()} == {
        "count": "int", "label": "str", "loud": "bool", "ratio": "float", "hosts": "list"}


@pytest.mark.parametrize("raw,type_name,expected", [
    ("0042", "str", "0042"), ("0042", "int", 42), ("1e3", "float", 1000.0), ("7", "float", 7.0),
    ("true", "bool", True), ("no", "bool", False), ("[a, b]", "list", ["a", "b"]),
    ("{a: 1}", "dict", {"a": 1}), ("None", "Optional[int]", None), ("5", "int | None", 5),
    ("True", "None", True), ("12", "None", 12), ("abc", "None", "abc"),
])
def test_cli_values_take_the_declared_type(raw, type_name, expected):
    value = params.coerce("x", raw, type_name)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("raw,type_name", [("ten", "int"), ("1.5", "int"), ("maybe", "bool"),
                                           ("x", "float"), ("a: 1", "list"), ("[1]", "dict")])
def test_values_that_do_not_fit_are_refused(raw, type_name):
    with pytest.raises(UsageError, match=f"parameter x must be {type_name}"):
        params.coerce("x", raw, type_name)


@pytest.mark.parametrize("value,type_name,ok", [
    (3, "int", True), (True, "int", False), (3, "float", True), ("3", "int", False),
    ([1], "list", True), ({"a": 1}, "list", False), (None, "str", False), (None, "Optional[str]", True),
    ("x", "None", True),
])
def test_file_values_are_type_checked(value, type_name, ok):
    if ok:
        params.check_type("x", value, type_name)
    else:
        with pytest.raises(UsageError):
            params.check_type("x", value, type_name)


def test_resolve_merges_file_then_cli_and_refuses_unknown_names():
    values = params.resolve_parameters(OK, {"count": 2, "label": "a"}, [("count", "5")])
    assert values == {"count": 5, "label": "a"}
    with pytest.raises(UsageError, match="ok.ipynb has no parameter lable; did you mean label"):
        params.resolve_parameters(OK, {"lable": "a"})
    with pytest.raises(UsageError, match="has no parameter zzz; it takes: count, hosts, label, loud, ratio"):
        params.resolve_parameters(OK, {}, [("zzz", "1")])
    with pytest.raises(UsageError, match="parameter count must be int"):
        params.resolve_parameters(OK, {"count": "two"})


@pytest.mark.parametrize("name", ["password", "xen_password", "adminPassword", "passwd", "api_token", "secret",
                                  "client_secret", "private_key", "ssh_key", "apikey", "credentials"])
def test_credential_names_are_refused(name):
    with pytest.raises(CredentialError, match=f"parameter {name} looks like a credential.*password_env"):
        params.refuse_credentials({name: "x"})


@pytest.mark.parametrize("name", ["password_env", "password_file", "token_path", "sort_key", "key_count",
                                  "username", "sr_uuid"])
def test_names_of_credential_sources_and_ordinary_names_pass(name):
    params.refuse_credentials({name: "XEN_PASSWORD" if name.endswith("_env") else "plain"})


@pytest.mark.parametrize("value,what", [
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIE...", "PEM key material"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "PEM key material"),
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0 admin@host", "an SSH key"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc", "a JSON web token"),
    ("AKIAABCDEFGHIJKLMNOP", "an AWS access key"),
    ("https://root:hunter2@pool.example:443", "a URL with a password"),
])
def test_credential_values_are_refused_even_under_innocent_names(value, what):
    with pytest.raises(CredentialError, match=what):
        params.refuse_credentials({"note": value})
    with pytest.raises(CredentialError):
        params.refuse_credentials({"hosts": ["a", {"b": value}]})


def test_the_value_of_a_credential_variable_is_refused(monkeypatch):
    monkeypatch.setenv("XEN_PASSWORD", "correct horse battery")
    with pytest.raises(CredentialError, match="value of a credential environment variable"):
        params.resolve_parameters(CREDS, {}, [("username", "correct horse battery")])


def test_an_env_parameter_must_hold_a_variable_name_not_a_password():
    with pytest.raises(CredentialError, match="must name an environment variable"):
        params.resolve_parameters(CREDS, {}, [("password_env", "s3cr3t!pass")])
    resolved = params.resolve_parameters(CREDS, {}, [("password_env", "POOL2_PASSWORD")])
    assert resolved == {"password_env": "POOL2_PASSWORD"}


def test_parameters_files_keep_dates_as_strings_and_refuse_non_mappings(tmp_path):
    good = tmp_path / "p.yaml"
    good.write_text("since: 2024-03-05\ncount: 3\n")
    assert params.load_parameters_file(good) == {"since": "2024-03-05", "count": 3}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(InputError, match="must hold a mapping"):
        params.load_parameters_file(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1,\n")
    with pytest.raises(InputError, match="not valid YAML"):
        params.load_parameters_file(broken)
    with pytest.raises(InputError, match="parameters file not found"):
        params.load_parameters_file(tmp_path / "none.yaml")


POOL_PARAMETERS = ["url", "user", "password_env", "password_file", "verify_tls", "ca_bundle",
                   "inventory_path", "smlog_paths"]


def test_the_pool_reading_notebooks_name_their_shared_parameters_alike():
    """02, 03 and 05 are run from one parameters file per pool: a name means the same thing,
    with the same type and default, in each notebook that takes it (01 too, for smlog_paths);
    02 and 05 take them all."""
    from runbook_lib.locations import notebooks_dir

    declared = {stem: params.declared_parameters(notebooks_dir() / f"{stem}.ipynb")
                for stem in ("02_size_space", "03_transfer_and_rescan", "05_snapshot_hygiene")}
    declared["01_diagnose_smlog"] = params.declared_parameters(notebooks_dir() / "01_diagnose_smlog.ipynb")
    for stem in ("02_size_space", "05_snapshot_hygiene"):
        assert set(POOL_PARAMETERS) <= set(declared[stem]), stem
        assert not {"inventory", "smlog"} & set(declared[stem]), stem  # the old names
    for name in POOL_PARAMETERS:
        seen = {(d[name]["inferred_type_name"], d[name]["default"]) for d in declared.values() if name in d}
        assert len(seen) == 1, (name, seen)


def test_papermill_reads_every_line_of_every_parameters_cell():
    """papermill drops a line it cannot parse (e.g. '=' inside the help comment), and then
    `runbook run` calls the parameter unknown: every line must come back as a parameter."""
    import nbformat

    from runbook_lib.locations import notebooks_dir

    for path in sorted(notebooks_dir().glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        names = [ln.split(":")[0].split("=")[0].strip() for ln in lines]
        assert sorted(params.declared_parameters(path)) == sorted(names), path.name


@pytest.mark.parametrize("raw,expected", [
    ("/var/log/SMlog", ["/var/log/SMlog"]), ("0042", ["0042"]), ("SMlog.1.gz", ["SMlog.1.gz"]),
    ("[/var/log/SMlog, /var/log/SMlog.1]", ["/var/log/SMlog", "/var/log/SMlog.1"]), ('["a"]', ["a"]),
])
def test_a_single_string_for_a_list_is_a_one_item_list(raw, expected):
    assert params.coerce("smlog_paths", raw, "list") == expected


def test_a_broken_list_is_still_refused():
    with pytest.raises(UsageError, match="parameter hosts must be list"):
        params.coerce("hosts", "[a, b", "list")


def test_a_single_string_for_a_list_in_a_parameters_file_is_a_one_item_list(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("hosts: /var/log/SMlog\ncount: 2\n")
    assert params.resolve_parameters(OK, params.load_parameters_file(path)) == {
        "hosts": ["/var/log/SMlog"], "count": 2}
    path.write_text("hosts: [a, b]\n")
    assert params.resolve_parameters(OK, params.load_parameters_file(path)) == {"hosts": ["a", "b"]}
    with pytest.raises(UsageError, match="parameter count must be int"):
        params.resolve_parameters(OK, {"count": "two"})


@pytest.mark.parametrize("name", ["password", "xen_password", "secret", "api_token"])
def test_a_password_parameter_gets_the_plain_rule_not_a_did_you_mean(name):
    with pytest.raises(CredentialError) as err:
        params.resolve_parameters(CREDS, {}, [(name, "hunter2")])
    text = str(err.value)
    assert "never parameters" in text and "-p password_env VARIABLE_NAME" in text
    assert "did you mean" not in text and "hunter2" not in text
    with pytest.raises(CredentialError, match="never parameters"):
        params.resolve_parameters(CREDS, {name: "hunter2"})
