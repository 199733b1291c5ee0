"""connect(): logging in to the simulator with the official client, and the one-line errors."""

import json
import socket
import ssl
import subprocess
import threading

import pytest

from runbook_lib.errors import CredentialError, RunbookError, UsageError
from runbook_lib.sim import Simulator, load_scenario
from runbook_lib.xapi.connect import (
    LoginFailed,
    PasswordMissing,
    PoolUnreachable,
    TLSVerificationFailed,
    connect,
    master_url,
    read_password,
)
from runbook_lib.xapi.inventory import fetch_inventory

SECRET = "s3cr3t-Pw-for-tests"
VAR = "RUNBOOK_TEST_XEN_PASSWORD"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    calls = tmp_path_factory.mktemp("sim") / "calls.jsonl"
    with Simulator("seed-stuck-leaf-coalesce", password=SECRET, calls=str(calls)) as s:
        s.calls_path = calls
        yield s


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_login_list_and_logout(sim, monkeypatch):
    monkeypatch.setenv(VAR, SECRET)
    with connect(sim.url, password_env=VAR) as session:
        pools = session.xenapi.pool.get_all_records()
        assert len(pools) == 1
        handle = session.handle
        assert handle and handle.startswith("OpaqueRef:")
    log = [json.loads(line) for line in sim.calls_path.read_text().splitlines()]
    assert any(e["method"] == "session.logout" for e in log)
    assert SECRET not in sim.calls_path.read_text()


def test_password_from_a_file(sim, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(SECRET + "\n")
    with connect(sim.url, password_env=None, password_file=pw) as session:
        assert session.xenapi.SR.get_all()


def test_wrong_password_is_one_line_and_never_shows_the_password(sim, monkeypatch):
    monkeypatch.setenv(VAR, "not-the-password")
    with pytest.raises(LoginFailed) as err:
        with connect(sim.url, password_env=VAR):
            pass
    text = str(err.value)
    assert "wrong user name or password" in text and "\n" not in text
    assert "not-the-password" not in text and SECRET not in text
    assert err.value.exit_code == 2 and isinstance(err.value, CredentialError)


def test_unreachable_host():
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(PoolUnreachable, match="connection refused") as err:
        with connect(url, password_env=None, password_file=__file__):
            pass
    assert "\n" not in str(err.value) and err.value.exit_code == 1


def test_unknown_host_name():
    with pytest.raises(PoolUnreachable, match="unknown host name|timed out"):
        with connect("http://no-such-host.invalid/", password_env=None, password_file=__file__,
                     timeout=5):
            pass


def test_missing_password_sources(monkeypatch, tmp_path):
    monkeypatch.delenv(VAR, raising=False)
    with pytest.raises(PasswordMissing, match=f"{VAR} is not set"):
        read_password(VAR)
    with pytest.raises(PasswordMissing, match="not found"):
        read_password(None, tmp_path / "nope")
    with pytest.raises(PasswordMissing) as err:
        read_password("hunter2!pw")  # a password typed where the variable's name belongs
    assert "hunter2" not in str(err.value) and "NAME" in str(err.value)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(PasswordMissing, match="empty"):
        read_password(None, tmp_path / "empty")


def test_urls_with_credentials_or_odd_schemes_are_refused():
    with pytest.raises(CredentialError, match="password"):
        with connect("https://root:pw@pool.example/", password_env=None, password_file=__file__):
            pass
    with pytest.raises(UsageError, match="not a pool URL"):
        with connect("ftp://pool.example/", password_env=None, password_file=__file__):
            pass


def test_master_url():
    assert master_url("https://10.0.0.2/", "10.0.0.1") == "https://10.0.0.1/"
    assert master_url("http://127.0.0.1:8080/", "127.0.0.1:9090") == "http://127.0.0.1:9090/"
    assert master_url("https://h:443/", "fe80::1") == "https://[fe80::1]:443/"


def test_follows_host_is_slave_to_the_master(sim, monkeypatch):
    """A member answers HOST_IS_SLAVE with the master's address; we log in there instead."""
    scenario = load_scenario("seed-stuck-leaf-coalesce")
    scenario = json.loads(json.dumps(scenario))
    scenario["hosts"][0]["address"] = f"127.0.0.1:{sim.url.rstrip('/').rsplit(':', 1)[1]}"
    with Simulator(scenario, password=SECRET, faults=["host-is-slave"]) as member:
        monkeypatch.setenv(VAR, SECRET)
        with connect(member.url, password_env=VAR) as session:
            assert session.url.rstrip("/") == sim.url.rstrip("/")
            assert session.xenapi.VM.get_all()


def test_session_expiry_logs_in_again_and_carries_on(monkeypatch):
    with Simulator("seed-stuck-leaf-coalesce", password=SECRET, faults=["session-expiry=3"]) as s:
        monkeypatch.setenv(VAR, SECRET)
        with connect(s.url, password_env=VAR) as session:
            inv = fetch_inventory(session)
            assert session.logins >= 3
        assert len(inv.vdis) >= 5


def test_embedded_simulator_url():
    with connect("sim:seed-stuck-leaf-coalesce") as session:
        url = session.url
        assert session.simulator is not None
        assert session.xenapi.SR.get_all()
    with pytest.raises(PoolUnreachable):  # stopped on exit
        with connect(url, password_env=None, password_file=__file__, timeout=3):
            pass


def test_unknown_scenario_is_a_usage_error():
    with pytest.raises(RunbookError, match="unknown scenario"):
        with connect("sim:no-such-scenario"):
            pass


# ---- TLS: a TLS terminator (stdlib ssl) in front of the simulator --------------------------

@pytest.fixture(scope="module")
def tls_proxy(sim, tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True)
    if done.returncode:
        pytest.skip("openssl cannot make a test certificate here")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    backend_port = int(sim.url.rstrip("/").rsplit(":", 1)[1])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve():
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()
                continue
            back = socket.create_connection(("127.0.0.1", backend_port))
            threading.Thread(target=pipe, args=(conn, back), daemon=True).start()
            threading.Thread(target=pipe, args=(back, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}/", cert
    stop.set()
    listener.close()


def test_tls_unverifiable_certificate_says_how_to_fix_it(tls_proxy, monkeypatch):
    url, cert = tls_proxy
    monkeypatch.setenv(VAR, SECRET)
    with pytest.raises(TLSVerificationFailed) as err:
        with connect(url, password_env=VAR):
            pass
    text = str(err.value)
    assert "could not be verified" in text and "--ca-bundle" in text and "--no-verify-tls" in text
    assert "\n" not in text


def test_tls_with_ca_bundle_or_explicit_opt_out(tls_proxy, monkeypatch):
    url, cert = tls_proxy
    monkeypatch.setenv(VAR, SECRET)
    with connect(url, password_env=VAR, ca_bundle=cert) as session:
        assert session.xenapi.pool.get_all()
    with connect(url, password_env=VAR, verify_tls=False) as session:
        assert session.xenapi.pool.get_all()


def test_reads_survive_a_server_restart_but_changes_are_not_repeated(monkeypatch):
    """Fault restart=2: after the first change the server drops connections for 2 s."""
    from runbook_lib.xapi.connect import PoolUnreachable as Unreachable

    with Simulator("healthy", password=SECRET, faults=["restart=2"]) as s:
        monkeypatch.setenv(VAR, SECRET)
        with connect(s.url, password_env=VAR, retry_refused_s=10) as session:
            sr = session.xenapi.SR.get_all()[0]
            session.xenapi.SR.scan(sr)  # the change that triggers the outage
            assert session.xenapi.VM.get_all_records()  # a read waits the outage out
    with Simulator("healthy", password=SECRET, faults=["restart=2"]) as s:
        with connect(s.url, password_env=VAR) as session:  # no retry window by default
            session.xenapi.SR.scan(session.xenapi.SR.get_all()[0])
            with pytest.raises(Unreachable) as err:
                session.xenapi.VM.get_all_records()
            assert "\n" not in str(err.value)
