"""Read-only questions to a host's dom0 over SSH (docs/sizing.md, "Exact sizes from dom0").

commands  the fixed allowlist of argument templates; every argument validated, paths built here
parse     vhd-util's and lvs' output as records; anything unparsable is a one-line ParseError
ssh       the SSH client (asyncssh): host keys checked against known_hosts, key/agent/password
          from a file or variable, one connection per host, commands in parallel, timeouts
"""
