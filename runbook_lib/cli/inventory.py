"""`runbook inventory save|show`: a pool's inventory as an offline, versioned JSON file."""

from __future__ import annotations

import click

from runbook_lib.cli.pool_options import pool_options
from runbook_lib.cli.ssh_options import ssh_options, ssh_settings


@click.group("inventory")
def inventory():
    """Save a pool's inventory to a file, or show one, so sizing works offline."""


@inventory.command("save")
@pool_options
@ssh_options
@click.option("--out", required=True, metavar="FILE",
              help="where to write the inventory (JSON, schema runbook.inventory/1)")
def save(url, user, inventory, password_env, password_file, verify_tls, ca_bundle, out, **ssh_kwargs):
    """Read the pool (one get_all_records per class) and write FILE. Holds no credentials.

    With --ssh the exact sizes dom0 gives are saved too, so sizing from the file is exact."""
    from runbook_lib.errors import UsageError
    from runbook_lib.input_files import check_output_file
    from runbook_lib.xapi.inventory import open_inventory

    if url is None:
        raise UsageError("say which pool to read: --url URL (sim:<scenario> for the simulator)")
    check_output_file(out, "the inventory")  # before the pool is read
    inv = open_inventory(url=url, inventory=inventory, user=user, password_env=password_env,
                         password_file=password_file, verify_tls=verify_tls, ca_bundle=ca_bundle,
                         ssh=ssh_settings(ssh_kwargs))
    for line in (inv.host_sizes.warnings if inv.host_sizes else []):
        click.echo(f"warning: {line}", err=True)
    path = inv.save(out)
    counts = inv.summary()
    click.echo(f"saved {path}: pool {counts['pool']}, {counts['SR']} SRs, {counts['VDI']} VDIs, "
               f"{counts['VM']} VMs (captured {counts['captured']})"
               + (f"; dom0 sizes of {len(inv.host_sizes.by_vdi)} VDIs" if inv.host_sizes else ""))


@inventory.command("show")
@click.argument("path")
def show(path):
    """Print the SRs of a saved inventory."""
    from runbook_lib.units import GIB
    from runbook_lib.xapi.inventory import Inventory

    inv = Inventory.load(path)
    counts = inv.summary()
    click.echo(f"pool {counts['pool']} captured {counts['captured']}: {counts['SR']} SRs, "
               f"{counts['VDI']} VDIs, {counts['VM']} VMs")
    srs = inv.srs[["uuid", "name", "type", "size", "used", "free"]].copy()
    for col in ("size", "used", "free"):
        srs[col] = (srs[col] / GIB).round(3)
    click.echo(srs.rename(columns={"size": "size_gib", "used": "used_gib", "free": "free_gib"})
               .to_string(index=False))
