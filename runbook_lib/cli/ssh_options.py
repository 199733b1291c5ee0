"""The options of every command that can ask dom0 over SSH (`--ssh`): how to reach the hosts,
log in and check their keys. Credentials only by file or variable name."""

from __future__ import annotations

import functools

import click


def ssh_options(func):
    options = [
        click.option("--ssh", "ssh", is_flag=True,
                     help="ask each host's dom0 the exact VHD sizes (read-only vhd-util/lvs over SSH)"),
        click.option("--ssh-user", default="root", show_default=True, help="dom0 user"),
        click.option("--ssh-key", type=click.Path(dir_okay=False), metavar="FILE",
                     help="private key file (default: the SSH agent and ~/.ssh keys)"),
        click.option("--known-hosts", type=click.Path(dir_okay=False), metavar="FILE",
                     help="known_hosts file the host keys are checked against (default ~/.ssh/known_hosts)"),
        click.option("--ssh-accept-new", is_flag=True,
                     help="trust on first use: write a host's unknown key to the --known-hosts FILE you name "
                          "(a changed key is still refused)"),
        click.option("--ssh-password-env", metavar="VAR", help="environment variable holding a dom0 password"),
        click.option("--ssh-password-file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="file holding a dom0 password"),
        click.option("--ssh-host", "ssh_hosts", multiple=True, metavar="HOST=ADDRESS[:PORT]",
                     help="where to reach a host (name or uuid) instead of its host.address; repeatable"),
        click.option("--ssh-timeout", type=float, default=30.0, show_default=True, metavar="SECONDS",
                     help="per command"),
    ]
    for option in reversed(options):
        func = option(func)
    return functools.wraps(func)(func)


def ssh_settings(kwargs: dict):
    """Pop the SSH options from a command's kwargs: SshOptions, or None without --ssh."""
    from runbook_lib.dom0.ssh import SshOptions
    from runbook_lib.errors import UsageError

    wanted = kwargs.pop("ssh")
    values = {k: kwargs.pop(k) for k in ("ssh_user", "ssh_key", "known_hosts", "ssh_accept_new",
                                         "ssh_password_env", "ssh_password_file", "ssh_hosts", "ssh_timeout")}
    if not wanted:
        return None
    hosts = {}
    for item in values["ssh_hosts"]:
        name, sep, where = item.partition("=")
        if not sep or not name or not where:
            raise UsageError(f"--ssh-host {item!r}: write it as HOST=ADDRESS[:PORT]")
        hosts[name] = where
    return SshOptions(user=values["ssh_user"], key_file=values["ssh_key"], known_hosts=values["known_hosts"],
                      accept_new=values["ssh_accept_new"], password_env=values["ssh_password_env"],
                      password_file=values["ssh_password_file"], timeout_s=values["ssh_timeout"], hosts=hosts)
