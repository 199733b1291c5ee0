"""Check run parameters against a notebook's parameters cell before anything runs.

papermill injects whatever it is given, typos and passwords included, and writes it in plain
text into the executed notebook. So names are checked against the notebook, `-p` strings are
converted with the type the notebook declares (not papermill's guess: `0042` stays a string
where a string is declared), and anything that looks like a credential is refused.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import yaml

from runbook_lib.errors import CredentialError, InputError, UsageError
from runbook_lib.input_files import read_yaml

# Name parts that mark a parameter as holding a credential itself.
_CREDENTIAL_WORDS = ("password", "passwd", "passphrase", "pwd", "secret", "token", "credential",
                     "credentials", "apikey", "privatekey")
# Two-word names ending in "key" that hold key material (`sort_key` does not).
_KEY_PREFIXES = ("api", "private", "access", "secret", "ssh", "auth", "signing", "encryption", "master")
# A parameter named like this holds the *source* of a credential, which is what we want.
_SOURCE_SUFFIXES = ("env", "file", "path", "var")

_VALUE_PATTERNS = [
    (re.compile(r"-----BEGIN [A-Z0-9 ]*(PRIVATE KEY|CERTIFICATE|PGP)"), "PEM key material"),
    (re.compile(r"\b(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+) AAAA[0-9A-Za-z+/]{20,}"), "an SSH key"),
    (re.compile(r"\beyJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]+"), "a JSON web token"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"\b(ghp|gho|ghs|github_pat|glpat|xox[abp])[-_][0-9A-Za-z_-]{16,}"), "an access token"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"), "a URL with a password in it"),
]

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Environment variables whose values are treated as secrets by the checks and the scan.
CREDENTIAL_ENV = re.compile(r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL)",
                            re.IGNORECASE)

_ADVICE = ("credentials never go into parameters: put the password in an environment variable and "
           "pass its name (password_env), or in a file readable only by you (password_file)")


def declared_parameters(notebook: str | Path) -> dict[str, dict[str, str]]:
    """The notebook's parameters cell as papermill reads it: name -> {inferred_type_name, default, help}."""
    import papermill

    try:
        return papermill.inspect_notebook(str(notebook))
    except FileNotFoundError as err:
        raise InputError(f"notebook not found: {notebook}") from err
    except Exception as err:  # a notebook that is not JSON, or has no parameters cell we can read
        raise InputError(f"cannot read the parameters of {notebook}: {err}") from err


def _base_type(type_name: str) -> tuple[str, bool]:
    """('int', optional?) from annotations like `int`, `Optional[int]`, `int | None`, `list[str]`."""
    name = type_name.replace(" ", "")
    optional = False
    match = re.fullmatch(r"Optional\[(.+)\]", name)
    if match:
        name, optional = match.group(1), True
    parts = name.split("|")
    if "None" in parts and len(parts) > 1:
        optional = True
        parts = [p for p in parts if p != "None"]
        name = parts[0] if len(parts) == 1 else name
    base = re.split(r"\[", name, maxsplit=1)[0].lower()
    base = {"typing.list": "list", "typing.dict": "dict", "list": "list", "dict": "dict"}.get(base, base)
    return base, optional


def _papermill_guess(raw: str) -> Any:
    """papermill's own -p rules, for parameters the notebook leaves untyped."""
    if raw in ("True", "False"):
        return raw == "True"
    if raw == "None":
        return None
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw


def coerce(name: str, raw: str, type_name: str) -> Any:
    """Convert one `-p NAME VALUE` string to the type the notebook declares for NAME."""
    base, optional = _base_type(type_name)
    if optional and raw in ("None", "null", ""):
        return None
    try:
        if base == "str":
            return raw
        if base == "int":
            return int(raw, 10)
        if base == "float":
            return float(raw)
        if base == "bool":
            lowered = raw.lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise ValueError(raw)
        if base in ("list", "tuple"):
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                if raw.lstrip().startswith("["):
                    raise  # meant as a list, but not a valid one
                value = raw
            if isinstance(value, dict):
                raise ValueError(raw)  # a mapping is a mistake, not a file name
            if not isinstance(value, (list, tuple)):
                value = [raw]  # `-p smlog_paths /var/log/SMlog`: one item, kept as typed
            return check_type(name, value, type_name)
        if base == "dict":
            value = yaml.safe_load(raw)
            check_type(name, value, type_name)
            return value
    except (ValueError, yaml.YAMLError) as err:
        raise UsageError(f"parameter {name} must be {type_name}, got {raw!r}") from err
    return _papermill_guess(raw)


def one_item_list(value: Any, type_name: str) -> Any:
    """A lone string where a list is declared (`smlog_paths: /var/log/SMlog` in a YAML file) is
    a list of that one string; anything else is left for check_type to judge."""
    base, _ = _base_type(type_name)
    return [value] if base in ("list", "tuple") and isinstance(value, str) else value


def check_type(name: str, value: Any, type_name: str) -> Any:
    """Refuse a value (from YAML or after coercion) that does not fit the declared type; returns it."""
    base, optional = _base_type(type_name)
    if value is None:
        if optional or base not in ("str", "int", "float", "bool", "list", "dict", "tuple"):
            return value
        raise UsageError(f"parameter {name} must be {type_name}, got None")
    expected = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
                "list": (list, tuple), "tuple": (list, tuple), "dict": (dict,)}.get(base)
    if expected is None:
        return value  # untyped or a type we do not model: papermill's rules apply
    if isinstance(value, bool) and base in ("int", "float"):
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise UsageError(f"parameter {name} must be {type_name}, got {type(value).__name__} {value!r}")
    return value


def _looks_like_credential_name(name: str) -> bool:
    words = [w for w in re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", name) if w]
    words = [w.lower() for w in words]
    if not words or words[-1] in _SOURCE_SUFFIXES:
        return False
    joined = "".join(words)
    if any(w in _CREDENTIAL_WORDS for w in words) or joined in _CREDENTIAL_WORDS:
        return True
    return words[-1] == "key" and len(words) >= 2 and words[-2] in _KEY_PREFIXES


def _walk_strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _walk_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk_strings(item)


def credential_env_values(extra_names: tuple[str, ...] | list[str] = ()) -> dict[str, str]:
    """Current values of credential-named environment variables (and of `extra_names`)."""
    found = {k: v for k, v in os.environ.items() if CREDENTIAL_ENV.search(k) and v}
    for name in extra_names:
        if os.environ.get(name):
            found[name] = os.environ[name]
    return found


def refuse_credentials(parameters: dict[str, Any]) -> None:
    """Raise CredentialError if a parameter's name or value looks like a credential."""
    secrets = {v for v in credential_env_values().values() if len(v) >= 4}
    for name, value in parameters.items():
        if _looks_like_credential_name(name):
            raise CredentialError(f"parameter {name} looks like a credential and is refused", hint=_ADVICE)
        if name.lower().endswith("_env") and isinstance(value, str) and value and not ENV_NAME.match(value):
            raise CredentialError(f"parameter {name} must name an environment variable, not hold its value",
                                  hint=_ADVICE)
        for text in _walk_strings(value):
            for pattern, what in _VALUE_PATTERNS:
                if pattern.search(text):
                    raise CredentialError(f"parameter {name} holds what looks like {what} and is refused",
                                          hint=_ADVICE)
            if any(secret in text for secret in secrets):
                raise CredentialError(f"parameter {name} holds the value of a credential environment variable",
                                      hint=_ADVICE)


def _check_known(notebook: str | Path, name: str, declared: dict[str, dict[str, str]]) -> None:
    """An unknown name is refused; one that names a credential gets the plain rule, not a guess
    (`password` is not a typo of `password_env`)."""
    if name in declared:
        return
    if _looks_like_credential_name(name):
        sources = [n for n in ("password_env", "password_file") if n in declared] or ["password_env", "password_file"]
        how = " or ".join(f"-p {n} {'VARIABLE_NAME' if n.endswith('_env') else 'PATH'}" for n in sources)
        raise CredentialError(f"{name}: passwords and other credentials are never parameters; put the password "
                              f"in an environment variable or a file readable only by you and pass its name: {how}")
    raise UsageError(f"{Path(notebook).name} has no parameter {name}{_suggest(name, list(declared))}")


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]}?" if close else f"; it takes: {', '.join(sorted(known)) or 'none'}"


def load_parameters_file(path: str | Path) -> dict[str, Any]:
    """A YAML (or JSON) mapping of parameters; dates stay strings, as papermill keeps them."""
    from papermill.iorw import NoDatesSafeLoader

    data = read_yaml(path, "parameters", loader=NoDatesSafeLoader)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"parameters file {path} must hold a mapping of name: value")
    return {str(k): v for k, v in data.items()}


def resolve_parameters(notebook: str | Path, file_values: dict[str, Any] | None = None,
                       cli_values: list[tuple[str, str]] | tuple = (),
                       declared: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The checked parameters for one run: the file's values, then `-p` pairs (later wins).

    Unknown names, values of the wrong type and anything that looks like a credential raise
    a UsageError (exit 2) before the notebook starts.
    """
    declared = declared if declared is not None else declared_parameters(notebook)
    values: dict[str, Any] = {}
    for name, value in (file_values or {}).items():
        _check_known(notebook, name, declared)
        type_name = declared[name]["inferred_type_name"]
        values[name] = check_type(name, one_item_list(value, type_name), type_name)
    for name, raw in cli_values:
        _check_known(notebook, name, declared)
        values[name] = coerce(name, raw, declared[name]["inferred_type_name"])
    refuse_credentials(values)
    return values
