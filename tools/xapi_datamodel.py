"""Write tests/data/xapi_datamodel.json: the real XenAPI datamodel facts the simulator is tested against.

Reads a bare git directory of xapi-project/xen-api (and of xapi-project/sm for the storage
manager's error numbers), e.g. the one the search tool's `fetch` leaves under /work/.mirror/:

    python tools/xapi_datamodel.py --xen-api /work/.mirror/xapi-project+xen-api/repo \\
        --sm /work/.mirror/xapi-project+sm/repo --out tests/data/xapi_datamodel.json

What it takes, as facts (names, wire types, parameter lists), never code:

- fields: `doc/data/xenapi.json` (the generated datamodel, last regenerated at the commit named
  in the output), plus every field added to `ocaml/idl/datamodel*.ml` since then that is not
  internal-only (found by reading the `field ... "name"` declarations of each class);
- enums: the `Enum ("name", [...])` declarations at the chosen commit (else the JSON's);
- errors: `ocaml/idl/datamodel_errors.ml` (declared parameters) with the codes of
  `ocaml/xapi-consts/api_errors.ml`;
- the API release table of `ocaml/idl/datamodel_types.ml`;
- sm's numbered errors from `libs/sm/core/XE_SR_ERRORCODES.xml`.

The few places where xapi raises an error with other parameters than it declares are listed
by hand in RAISED below, each with the source line that raises it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

CLASSES = ("pool", "host", "SR", "PBD", "VDI", "VM", "VBD", "VIF", "network", "task", "message",
           "VM_metrics", "SM")
IDL = "ocaml/idl/"
CLASS_FILES = {"VM": "datamodel_vm.ml", "host": "datamodel_host.ml", "pool": "datamodel_pool.ml"}

# Raised with other parameters than datamodel_errors.ml declares (read at the commit in `source`).
RAISED = {
    "SESSION_AUTHENTICATION_FAILED": (["uname", "msg"], "ocaml/xapi/xapi_session.ml:282"),
    "VDI_COPY_FAILED": (["log"], "ocaml/xapi/sparse_dd_wrapper.ml:181"),
    "VM_IS_SNAPSHOT": (["vm", "operation"], "ocaml/xapi/xapi_vm_lifecycle.ml:283 (not declared)"),
    "VM_IS_TEMPLATE": (["vm", "operation"], "ocaml/xapi/xapi_vm_lifecycle.ml:269 (check_template; only "
                                                "VM.set_snapshot_schedule raises [vm], xapi_vm.ml:1362)"),
}
# Errors that are not in the datamodel: a plugin's own answers (python3/examples/XenAPIPlugin.py,
# the module every Python plugin dispatches through) and sm's numbered backend failures
# (ocaml/xapi/sm_exec.ml: SR_BACKEND_FAILURE_<n> with ["", reason, stderr]).
PLUGIN_ERRORS = {
    "UNKNOWN_XENAPI_PLUGIN_FUNCTION": (["function"], "python3/examples/XenAPIPlugin.py dispatch"),
    "XENAPI_PLUGIN_FAILURE": (["function", "exception class", "message"],
                              "python3/examples/XenAPIPlugin.py dispatch (a Python plugin's exception)"),
}
SM_BACKEND = {"params": ["", "reason", "stderr"], "source": "ocaml/xapi/sm_exec.ml (XMLRPC.Fault code)"}
SM_CODES = ("44", "78", "79", "109")


def _git(gitdir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", gitdir, *args], check=True, capture_output=True,
                          text=True).stdout


def _show(gitdir: str, commit: str, path: str) -> str:
    return _git(gitdir, "show", f"{commit}:{path}")


# -- a reader for the OCaml datamodel declarations -------------------------------------------------
def _string_end(text: str, i: int) -> int:
    """Index after the OCaml string literal starting at text[i] == '"'."""
    j = i + 1
    while text[j] != '"':
        j += 2 if text[j] == "\\" else 1
    return j + 1


def _skip(text: str, i: int) -> int | None:
    """Index after a comment or character literal at i, None if there is none."""
    if text.startswith("(*", i):
        return text.index("*)", i) + 2
    if text[i] == "'" and i + 2 < len(text) and text[i + 2] == "'":
        return i + 3
    if text.startswith("'\\", i):
        return text.index("'", i + 2) + 1
    return None


def _call_text(text: str, start: int, top: list[int] | None = None) -> tuple[str, list[str]]:
    """The text of the call starting at `start` up to its `;` or closing bracket, with string
    literals replaced by "@N", and the literals' contents (their numbers at bracket depth 0
    are appended to `top`)."""
    out, strings, depth, i = [], [], 0, start
    while i < len(text):
        after = _skip(text, i)
        if after is not None:
            i = after
            continue
        c = text[i]
        if c == '"':
            j = _string_end(text, i)
            strings.append(re.sub(r"\\\n\s*", "", text[i + 1:j - 1]))
            out.append(f"@{len(strings) - 1}")
            if top is not None and depth == 0:
                top.append(len(strings) - 1)
            i = j
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if depth < 0 or (depth == 0 and c == ";"):
            break
        out.append(c)
        i += 1
    return "".join(out), strings


def _balanced(expr: str, start: int) -> str:
    """The label value starting at expr[start]: a bracketed group or one word."""
    while expr[start].isspace():
        start += 1
    if expr[start] in "([":
        depth = 0
        for j in range(start, len(expr)):
            depth += expr[j] in "(["
            depth -= expr[j] in ")]"
            if depth == 0:
                return expr[start:j + 1]
    return re.match(r"[\w.@]+", expr[start:]).group(0)


def _label(call: str, name: str) -> str | None:
    m = re.search(rf"~{name}:", call)
    return _balanced(call, m.end()) if m else None


def _code_only(text: str) -> str:
    """The text with string literals and comments blanked (same length), to find keywords in."""
    out, i = list(text), 0
    while i < len(text):
        after = _skip(text, i)
        end = after if after is not None else (_string_end(text, i) if text[i] == '"' else None)
        if end is None:
            i += 1
            continue
        out[i:end] = re.sub(r"[^\n]", " ", text[i:end])
        i = end
    return "".join(out)


def _fields_in(text: str, first_line: int, last_line: int) -> list[dict]:
    """Every `field ... "name" "doc"` declared between these lines: name, ~ty, ~qualifier,
    ~internal_only, ~lifecycle and ~default_value as written."""
    found = []
    for m in re.finditer(r"(?<![\w.~])field\b(?!\s*=)", _code_only(text)):
        line = text.count("\n", 0, m.start()) + 1
        if not first_line <= line < last_line:
            continue
        names: list[int] = []
        call, strings = _call_text(text, m.end(), names)
        if not names or not re.fullmatch(r"\w+", strings[names[0]]):
            continue
        lifecycle = _label(call, "lifecycle") or ""
        found.append({"name": strings[names[0]], "line": line, "ty": _label(call, "ty"),
                      "qualifier": _label(call, "qualifier"),
                      "internal_only": "~internal_only:true" in call,
                      "removed": "Removed" in lifecycle, "strings": strings,
                      "default": _label(call, "default_value")})
    return found


def _class_regions(text: str) -> dict[str, tuple[int, int]]:
    """Class name (its `_name` constant) -> the lines of its create_obj call (up to the `()`
    that ends it at bracket depth 0)."""
    code = _code_only(text)
    out = {}
    for m in re.finditer(r"create_obj\b", code):
        name = re.search(r"~name:(_\w+)", code[m.start():m.start() + 800])
        if not name:
            continue
        depth, i = 0, m.end()
        while i < len(code) and not (depth == 0 and code.startswith("()", i)):
            depth += code[i] in "(["
            depth -= code[i] in ")]"
            i += 1
        out[name.group(1)] = (code.count("\n", 0, m.start()) + 1, code.count("\n", 0, i) + 1)
    return out


class Types:
    """OCaml type expressions of the datamodel as the wire type names of xenapi.json."""

    def __init__(self, constants: dict[str, str], enums: dict[str, list[str]], aliases: dict[str, str]):
        self.constants, self.enums, self.aliases = constants, enums, aliases

    def wire(self, ty: str) -> str:
        ty = ty.strip()
        while ty.startswith("(") and ty.endswith(")") and self._one_group(ty):
            ty = ty[1:-1].strip()
        simple = {"Bool": "bool", "Int": "int", "Float": "float", "String": "string",
                  "DateTime": "datetime"}
        if ty in simple:
            return simple[ty]
        if ty.startswith("Ref "):
            return f"{self.constants[ty[4:].strip()]} ref"
        if ty.startswith("Set "):
            return f"{self.wire(ty[4:])} set"
        if ty.startswith("Map "):
            inner = ty[4:].strip()[1:-1]
            depth, cut = 0, None
            for i, c in enumerate(inner):
                depth += c == "("
                depth -= c == ")"
                if c == "," and depth == 0:
                    cut = i
                    break
            return f"({self.wire(inner[:cut])} -> {self.wire(inner[cut + 1:])}) map"
        name = self.aliases.get(ty.split(".")[-1], ty.split(".")[-1])
        if name in self.enums:
            return f"enum {name}"
        raise ValueError(f"cannot read the type {ty!r}")

    @staticmethod
    def _one_group(ty: str) -> bool:
        depth = 0
        for i, c in enumerate(ty):
            depth += c == "("
            depth -= c == ")"
            if depth == 0 and i < len(ty) - 1:
                return False
        return True


def _enums(texts: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Enum name -> values, and OCaml variable -> enum name, from `let v = Enum ("name", ...)`."""
    enums, aliases = {}, {}
    for text in texts:
        code = _code_only(text)
        lists = {m.group(1): m.end() for m in re.finditer(r"let\s+(\w+)\s*=\s*\[", text)}
        for m in re.finditer(r"let\s+(\w+)\s*=\s*Enum\s*\(\s*\"(\w+)\"\s*,\s*", text):
            var, name = m.group(1), m.group(2)
            body_at = m.end()
            if text[body_at] != "[":   # a named list of (value, doc) pairs
                ident = re.match(r"\w+", text[body_at:]).group(0)
                if ident not in lists:
                    continue
                body_at = lists[ident] - 1
            close = _group_end(code[body_at:])
            call, strings = _call_text(text[body_at:body_at + close] + ")", 0)
            values = [strings[int(n)] for n in re.findall(r"\(\s*@(\d+)\s*,", call)]
            if values:
                enums[name] = values
                aliases[var] = name
    return enums, aliases


def _group_end(code: str) -> int:
    """Index after the bracketed group that opens at code[0]."""
    depth = 0
    for i, c in enumerate(code):
        depth += c in "(["
        depth -= c in ")]"
        if depth == 0:
            return i + 1
    return len(code)


def _json_fields(data: list[dict]) -> dict[str, dict]:
    by_class = {c["name"]: c for c in data}
    out = {}
    for cls in CLASSES:
        fields = {}
        for f in by_class[cls]["fields"]:
            state = f["lifecycle"]["state"].removesuffix("_s").lower()
            fields[f["name"]] = {"type": f["type"], "qualifier": f["qualifier"], "lifecycle": state,
                                 "default": f.get("default")}
        out[cls] = fields
    return out


def _additions(gitdir: str, commit: str, fields: dict[str, dict], types: Types) -> list[str]:
    """Add the public fields declared at `commit` that the JSON lacks; returns what was added."""
    added = []
    constants = dict(re.findall(r"let\s+(\w+)\s*=\s*(true|false|-?\d+)L?\b",
                                _show(gitdir, commit, "ocaml/xapi-consts/constants.ml")))
    texts = {}
    for cls in CLASSES:
        path = IDL + CLASS_FILES.get(cls, "datamodel.ml")
        text = texts.setdefault(path, _show(gitdir, commit, path))
        region = _class_regions(text).get("_" + cls.lower())
        if region is None:
            raise SystemExit(f"no create_obj for {cls} in {path}")
        known = fields[cls]
        for f in _fields_in(text, *region):
            if f["internal_only"] or f["name"] in known or any(k.endswith("_" + f["name"]) for k in known):
                continue
            if f["ty"] is None:
                raise SystemExit(f"{cls}.{f['name']} ({path}:{f['line']}) has no ~ty")
            known[f["name"]] = {"type": types.wire(f["ty"]), "qualifier": _qualifier(f["qualifier"]),
                                "lifecycle": "removed" if f["removed"] else "published",
                                "default": _default(f["default"], f["strings"], constants),
                                "added_after_json": f"{path}:{f['line']}"}
            added.append(f"{cls}.{f['name']}")
    return added


def _qualifier(q: str | None) -> str:
    return {"RW": "RW", "StaticRO": "RO/constructor", "DynamicRO": "RO/runtime"}.get(q or "RW", q or "RW")


def _default(expr: str | None, strings: list[str], constants: dict[str, str]):
    """A literal default as the JSON spells it (None when the declaration computes it);
    `Constants.x` is looked up in ocaml/xapi-consts/constants.ml."""
    if not expr:
        return None
    expr = re.sub(r"Constants\.(\w+)", lambda c: constants.get(c.group(1), c.group(0)), expr)
    m = re.search(r"V(Bool|Int|String|Enum|Float)\s+(\S+?)L?\)", expr)
    if m and m.group(2).startswith("@"):
        return strings[int(m.group(2)[1:])]
    if m and re.fullmatch(r"-?[\w.]+", m.group(2)) and not m.group(2)[0].isupper():
        return m.group(2)
    if "VSet []" in expr or "VMap []" in expr:
        return "{}" if "VMap" in expr else "[]"
    if "null_ref" in expr:
        return "OpaqueRef:NULL"
    if "Date.epoch" in expr:
        return "19700101T00:00:00Z"
    return None


def _errors(gitdir: str, commit: str) -> dict[str, dict]:
    codes = dict(re.findall(r"let\s+(\w+)\s*=\s*add_error\s*\"([A-Z0-9_]+)\"",
                            _show(gitdir, commit, "ocaml/xapi-consts/api_errors.ml")))
    text = _show(gitdir, commit, IDL + "datamodel_errors.ml")
    out = {}
    for m in re.finditer(r"\berror\s+Api_errors\.(\w+)\s*\[([^\]]*)\]", text):
        code = codes.get(m.group(1))
        if code:
            out[code] = {"params": re.findall(r"\"([^\"]*)\"", m.group(2))}
    for code, (params, where) in RAISED.items():
        entry = out.setdefault(code, {"params": params, "declared": False})
        entry.update(raised=params, raised_at=where)
    for code, (params, where) in PLUGIN_ERRORS.items():
        out.setdefault(code, {"params": params})
        out[code].update(raised=params, raised_at=where)
    return out


def _releases(gitdir: str, commit: str) -> list[dict]:
    text = _show(gitdir, commit, IDL + "datamodel_types.ml")
    names = dict(re.findall(r"let\s+(rel_\w+)\s*=\s*\"([^\"]+)\"", text))
    out = []
    for m in re.finditer(r"code_name\s*=\s*Some\s+(rel_\w+)\s*;\s*version_major\s*=\s*(\d+)\s*;"
                         r"\s*version_minor\s*=\s*(\d+)\s*;\s*branding\s*=\s*\"([^\"]*)\"", text):
        out.append({"code_name": names.get(m.group(1), m.group(1)), "api_version": f"{m.group(2)}.{m.group(3)}",
                    "branding": m.group(4)})
    return out


def _sm_codes(gitdir: str, commit: str) -> dict[str, str]:
    text = _show(gitdir, commit, "libs/sm/core/XE_SR_ERRORCODES.xml")
    pairs = re.findall(r"<description>(.*?)</description>\s*<value>(\d+)</value>", text)
    return {value: desc for desc, value in pairs if value in SM_CODES}


def build(xen_api: str, sm: str, commit: str, sm_commit: str) -> tuple[dict, list[str]]:
    commit = _git(xen_api, "rev-parse", commit).strip()
    sm_commit = _git(sm, "rev-parse", sm_commit).strip()
    json_commit = _git(xen_api, "log", "-1", "--format=%H %cs", commit, "--", "doc/data/xenapi.json").split()
    data = json.loads(_show(xen_api, commit, "doc/data/xenapi.json"))
    fields = _json_fields(data)
    idl_files = [p for p in _git(xen_api, "ls-tree", "--name-only", commit, IDL).split()
                 if re.search(r"/datamodel\w*\.ml$", p)]
    enums, aliases = _enums([_show(xen_api, commit, p) for p in idl_files])
    for c in data:
        for e in c.get("enums", []):
            enums.setdefault(e["name"], [v["name"] for v in e["values"]])
    constants = dict(re.findall(r"let\s+(_\w+)\s*=\s*\"(\w+)\"", _show(xen_api, commit, IDL + "datamodel_common.ml")))
    added = _additions(xen_api, commit, fields, Types(constants, enums, aliases))
    used = {t.split()[1] for cls in fields.values() for f in cls.values()
            for t in re.findall(r"enum \w+", f["type"])}
    when = _git(xen_api, "log", "-1", "--format=%cs", commit).strip()
    out = {
        "source": {
            "repository": "xapi-project/xen-api", "commit": commit, "date": when,
            "fields": f"doc/data/xenapi.json as regenerated at {json_commit[0]} ({json_commit[1]}), plus the "
                      f"public fields declared in ocaml/idl/datamodel*.ml at {commit[:12]} since then "
                      "(marked added_after_json)",
            "errors": "ocaml/idl/datamodel_errors.ml and ocaml/xapi-consts/api_errors.ml; 'raised' where xapi "
                      "raises other parameters than it declares",
            "sm": {"repository": "xapi-project/sm", "commit": sm_commit,
                   "file": "libs/sm/core/XE_SR_ERRORCODES.xml"},
            "written_by": "tools/xapi_datamodel.py",
        },
        "classes": {cls: {"fields": fields[cls]} for cls in CLASSES},
        "enums": {name: enums[name] for name in sorted(used)},
        "errors": dict(sorted(_errors(xen_api, commit).items())),
        "sm_backend_failure": {**SM_BACKEND, "codes": _sm_codes(sm, sm_commit)},
        "api_releases": _releases(xen_api, commit),
    }
    return out, added


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--xen-api", required=True, help="bare git directory of xapi-project/xen-api")
    ap.add_argument("--sm", required=True, help="bare git directory of xapi-project/sm")
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--sm-commit", default="HEAD")
    ap.add_argument("--out", type=Path, default=Path("tests/data/xapi_datamodel.json"))
    args = ap.parse_args(argv)
    out, added = build(args.xen_api, args.sm, args.commit, args.sm_commit)
    args.out.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
    print(f"wrote {args.out}: {sum(len(c['fields']) for c in out['classes'].values())} fields, "
          f"{len(out['errors'])} errors; added after the JSON: {', '.join(added) or 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
