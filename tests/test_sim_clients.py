"""The XenAPI clients admins use, against the simulator: the official `XenAPI` Python package
(XML-RPC), the `async-xenapi` JSON-RPC client (where it installs), and Xen Orchestra's `xen-api`
npm client (JSON-RPC, where node and the npm registry are at hand)."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import xmlrpc.client

import pytest
import XenAPI

from runbook_lib.sim import Simulator

NPM_TIMEOUT_S = 45


@pytest.fixture(scope="module")
def sim():
    with Simulator("healthy", speed=36000) as s:
        yield s


def test_the_official_client_lists_vms_and_runs_an_async_task(sim):
    s = XenAPI.Session(sim.url)
    s.xenapi.login_with_password(sim.user, sim.password, "2.0", "clients")
    try:
        x = s.xenapi
        vms = {r["name_label"]: ref for ref, r in x.VM.get_all_records().items() if not r["is_control_domain"]}
        assert {"app", "db"} <= set(vms)
        task = x.Async.VM.clone(vms["db"], "db by the official client")
        deadline = 200
        while x.task.get_status(task) == "pending" and deadline:
            deadline -= 1
            time.sleep(0.05)
        assert x.task.get_status(task) == "success" and x.task.get_name_label(task) == "Async.VM.clone"
        assert x.VM.get_name_label(x.task.get_result(task).removeprefix("<value>").removesuffix("</value>")) \
            == "db by the official client"
    finally:
        s.xenapi.session.logout()


def test_the_official_python_client_has_no_jsonrpc_transport():
    """XenAPI on PyPI (26.x) is an xmlrpc.client.ServerProxy: it speaks XML-RPC only, so its JSON-RPC
    use is covered by the JSON-RPC clients below. Should a release add JSON-RPC, this fails: test it then."""
    params = set(inspect.signature(XenAPI.Session.__init__).parameters)
    assert issubclass(XenAPI.Session, xmlrpc.client.ServerProxy)
    assert not {p for p in params if "json" in p.lower() or p in ("protocol", "rpc")}


def test_async_xenapi_logs_in_lists_vms_and_runs_a_task(sim):
    """async-xenapi (PyPI) is a JSON-RPC 2.0 asyncio client; it needs Python 3.12 or newer."""
    async_xenapi = pytest.importorskip(
        "async_xenapi", reason="async-xenapi is not installed: it needs Python >= 3.12 (this is "
                               f"{sys.version_info[0]}.{sys.version_info[1]})")

    async def run():
        session = async_xenapi.AsyncXenAPISession(sim.url)
        await session.login_with_password(sim.user, sim.password)
        try:
            records = await session.xenapi.VM.get_all_records()
            names = {r["name_label"]: ref for ref, r in records.items() if not r["is_control_domain"]}
            task = await session.xenapi.Async.VM.clone(names["db"], "db by async-xenapi")
            for _ in range(200):
                if await session.xenapi.task.get_status(task) != "pending":
                    break
                await asyncio.sleep(0.05)
            return names, await session.xenapi.task.get_record(task)
        finally:
            await session.logout()

    names, task = asyncio.run(run())
    assert {"app", "db"} <= set(names)
    assert task["status"] == "success" and task["name_label"] == "Async.VM.clone"


XO_SCRIPT = textwrap.dedent("""\
    import { createClient } from 'xen-api'

    const xapi = createClient({ url: process.env.SIM_URL, allowUnauthorized: true,
                                auth: { user: process.env.SIM_USER, password: process.env.SIM_PASSWORD } })
    await xapi.connect()
    await xapi.objectsFetched
    const vms = Object.values(xapi.objects.all).filter(o => o.$type === 'VM' && !o.is_control_domain)
    const db = vms.find(vm => vm.name_label === 'db')
    const copy = await xapi.callAsync('VM.clone', db.$ref, 'db by xen-api')
    const record = await xapi.getRecord('VM', copy)
    const host = await xapi.getRecord('host', xapi.pool.master)
    console.log(JSON.stringify({ vms: vms.map(vm => vm.name_label).sort(), copy: record.name_label,
                                 api: [host.API_version_major, host.API_version_minor] }))
    await xapi.disconnect()
    process.exit(0)
""")


def _npm_install(workdir, env) -> str | None:
    """Install xen-api into workdir; the reason when that cannot be done here."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "node and npm are not installed"
    (workdir / "package.json").write_text(json.dumps({"name": "xo-client-check", "private": True,
                                                      "type": "module"}))
    try:
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "xen-api"],
                              cwd=workdir, env=env, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"npm install xen-api took more than {NPM_TIMEOUT_S} s (no registry?)"
    if done.returncode != 0:
        return f"npm install xen-api failed (no registry?): {done.stderr.strip().splitlines()[-1:]}"
    return None


def test_xen_orchestras_xen_api_client_connects_lists_vms_and_runs_a_task(sim, tmp_path):
    """Xen Orchestra's `xen-api` npm client over JSON-RPC: session, pool, system.listMethods, every
    get_all_records, event.inject / event.from, and an Async call it watches through events. Runs
    in a temporary directory (its node_modules never lands in the repository)."""
    env = {**os.environ, "npm_config_cache": str(tmp_path / "npm-cache"), "SIM_URL": sim.url,
           "SIM_USER": sim.user, "SIM_PASSWORD": sim.password}
    why = _npm_install(tmp_path, env)
    if why:
        pytest.skip(why)
    (tmp_path / "check.mjs").write_text(XO_SCRIPT)
    done = subprocess.run(["node", "check.mjs"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"app", "db"} <= set(out["vms"]) and out["copy"] == "db by xen-api"
    assert out["api"] == [2, 21]
