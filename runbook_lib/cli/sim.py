"""`runbook sim`: serve the pool simulator, or turn a pool's inventory into a scenario."""

from __future__ import annotations

import os
import signal
import sys

import click

from runbook_lib.cli.pool_options import pool_options
from runbook_lib.errors import CredentialError, UsageError
from runbook_lib.sim.scenarios import DEFAULT_CLOCK_START


@click.group("sim")
def sim():
    """The XenServer pool simulator (docs/simulator.md)."""


@sim.command("serve")
@click.option("--scenario", default="seed-stuck-leaf-coalesce", show_default=True,
              help="a shipped scenario name or a scenario YAML file")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; only loopback is accepted")
@click.option("--port", default=0, type=click.IntRange(0, 65535), show_default=True,
              help="0 picks a free port")
@click.option("--smlog", metavar="FILE", help="write the SMlog here")
@click.option("--calls", metavar="FILE",
              help="write every call as a JSON line here (sessions and passwords redacted)")
@click.option("--speed", type=float, help="simulated seconds per wall second "
              "(default: the scenario's, 3600 for shipped ones)")
@click.option("--fault", "faults", multiple=True, metavar="NAME[=VALUE]",
              help="inject a fault (repeatable); see docs/simulator.md")
@click.option("--password-env", metavar="VAR",
              help="name of an environment variable holding the password to accept "
                   "(default: the scenario's, 'simulator' for shipped ones)")
@click.option("--clock-start", default=DEFAULT_CLOCK_START, show_default=True, metavar="ISO|now-24h|scenario",
              help="when the simulated clock starts: an ISO date, now-<N>h/m/d, or 'scenario' for the "
                   "scenario's own clock.start (SMlog lines have no year: a start after now dates them a year back)")
@click.option("--ssh", "ssh", is_flag=True,
              help="also serve SSH for each host's dom0 on loopback (its own host key each); prints how to reach them")
@click.option("--ssh-log", metavar="FILE", help="every SSH command as a JSON line (default: beside --calls)")
@click.option("--list", "list_only", is_flag=True, help="list the shipped scenarios and exit")
def serve(scenario, host, port, smlog, calls, speed, faults, password_env, clock_start, ssh, ssh_log, list_only):
    """Serve a simulated pool until interrupted."""
    from runbook_lib.sim import Simulator
    from runbook_lib.sim.scenarios import list_scenarios, load_scenario, with_clock_start

    if list_only:
        for name in list_scenarios():
            click.echo(name)
        return
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise CredentialError(f"environment variable {password_env} is not set or empty")
    if speed is not None and speed <= 0:
        raise UsageError("--speed must be positive")
    data = load_scenario(scenario)
    if clock_start != "scenario":
        data = with_clock_start(data, clock_start)
    simulator = Simulator(scenario=data, port=port, smlog=smlog, calls=calls, speed=speed,
                          faults=faults, password=password, host=host, ssh=ssh, ssh_log=ssh_log)
    try:
        check_fault_targets(simulator)
    except UsageError:
        simulator.stop()
        raise
    try:
        simulator.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"listening on http://{simulator.host}:{simulator.port}", nl=True)
    if simulator.ssh is not None:
        _echo_ssh(simulator)
    sys.stdout.flush()
    click.echo(f"scenario {simulator.scenario_name}; user {simulator.user}; speed "
               f"{simulator.pool.clock.speed:g}x; Ctrl-C to stop", err=True)
    signal.signal(signal.SIGTERM, lambda *_: simulator._stop.set())
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        simulator.stop()


def _echo_ssh(simulator) -> None:
    """How to reach each host's dom0, and the known_hosts lines to trust (nothing else is trusted)."""
    st = simulator.pool.store
    names = {rec["uuid"]: rec["name_label"] for rec in st.tables["host"].values()}
    hosts = []
    for uuid, (address, port) in simulator.ssh.endpoints().items():
        click.echo(f"ssh: host {names[uuid]} ({uuid[:8]}) dom0 at {address}:{port}, user {simulator.user}")
        hosts.append(f"--ssh-host {names[uuid]}={address}:{port}")
    click.echo("known_hosts lines (put them in the file you pass as --known-hosts):")
    for line in simulator.ssh.known_hosts_lines():
        click.echo(f"  {line}")
    click.echo("runbook size --ssh options: " + " ".join(hosts) + " --known-hosts FILE --ssh-password-env VAR")


def check_fault_targets(simulator) -> None:
    """A fault aimed at a VM or SR the scenario does not have would never fire: refuse it."""
    tables = simulator.pool.store.tables
    for fault, table, what in (("vm-wont-stop", "VM", "VM"), ("staging-full", "SR", "SR")):
        target = simulator.pool.faults.active.get(fault)
        if not target:
            continue
        records = tables[table].values()
        if any(target in (rec.get("name_label"), rec.get("uuid")) for rec in records):
            continue
        names = sorted({rec.get("name_label") for rec in records if rec.get("name_label")
                        and not rec.get("is_a_template") and not rec.get("is_control_domain")})
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise UsageError(f"--fault {fault}={target}: scenario {simulator.scenario_name} has no {what} with that "
                         f"name or uuid ({what}s: {shown or 'none'})")


@sim.command("snapshot")
@pool_options
@click.option("--out", required=True, metavar="FILE", help="scenario YAML to write")
def snapshot(url, user, inventory, password_env, password_file, verify_tls, ca_bundle, out):
    """Write a pool's inventory (live, or a saved one) as a scenario, to rehearse on a copy.

    Serve the result with `runbook sim serve --scenario FILE`.
    """
    from runbook_lib.input_files import check_output_file
    from runbook_lib.sim.snapshot import snapshot_inventory, snapshot_pool

    if bool(url) == bool(inventory):
        raise UsageError("give either --url (a pool) or --inventory (a saved inventory file)")
    check_output_file(out, "the scenario")  # before the pool is read
    if inventory:
        summary = snapshot_inventory(inventory, out)
    else:
        summary = snapshot_pool(url, user, password_env, out, verify_tls=verify_tls,
                                ca_bundle=ca_bundle, password_file=password_file)
    click.echo(f"wrote {out}: {summary}")
