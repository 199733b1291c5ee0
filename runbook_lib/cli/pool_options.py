"""The options every pool-reading command shares: where the pool is and how to log in."""

from __future__ import annotations

import functools

import click


def pool_options(func=None, *, inventory: bool = True):
    """--url/--user/--inventory, the password's source (never the password), TLS choices.

    `@pool_options(inventory=False)` for a command that needs the pool itself, not a saved inventory.
    """
    if func is None:
        return functools.partial(pool_options, inventory=inventory)
    options = [
        click.option("--url", metavar="URL",
                     help="pool master, e.g. https://xen1.example; sim:<scenario> runs the bundled simulator"),
        click.option("--user", default="root", show_default=True, help="XenAPI user"),
        *([click.option("--inventory", metavar="FILE",
                        help="a saved inventory (runbook inventory save) instead of a pool")] if inventory else []),
        click.option("--password-env", default="XEN_PASSWORD", show_default=True, metavar="VAR",
                     help="environment variable that holds the password"),
        click.option("--password-file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="file that holds the password (instead of the variable)"),
        click.option("--no-verify-tls", "verify_tls", flag_value=False, default=True,
                     help="do not verify the pool's TLS certificate (explicit opt-out)"),
        click.option("--ca-bundle", type=click.Path(dir_okay=False), metavar="FILE",
                     help="CA certificate(s) to verify the pool's TLS certificate with"),
    ]
    for option in reversed(options):
        func = option(func)
    return functools.wraps(func)(func)
