"""VM export / import over HTTP keeps what a round trip must keep."""

import io
import tarfile
import urllib.error
import urllib.request

import pytest
import XenAPI

from runbook_lib.sim import Simulator


def test_export_import_round_trip():
    with Simulator("healthy", speed=360000) as sim:
        s = XenAPI.Session(sim.url)
        x = s.xenapi
        x.login_with_password(sim.user, sim.password, "1.0", "tests")
        db = x.VM.get_by_name_label("db")[0]
        x.VM.set_name_description(db, "orders")
        url = f"{sim.url}export?uuid={x.VM.get_uuid(db)}&session_id={s._session}"
        body = urllib.request.urlopen(url, timeout=10).read()
        names = tarfile.open(fileobj=io.BytesIO(body)).getnames()
        assert names[0] == "ova.xml" and any(n.endswith("/manifest.json") for n in names)
        nfs = x.SR.get_by_name_label("NFS backup")[0]
        req = urllib.request.Request(f"{sim.url}import?session_id={s._session}&sr_id={nfs}",
                                     data=body, method="PUT")
        new = urllib.request.urlopen(req, timeout=10).read().decode()
        rec = x.VM.get_record(new)
        assert rec["name_label"] == "db" and rec["name_description"] == "orders"
        assert rec["power_state"] == "Halted" and rec["uuid"] != x.VM.get_uuid(db)
        assert [x.VIF.get_MAC(v) for v in rec["VIFs"]] == [x.VIF.get_MAC(v) for v in x.VM.get_VIFs(db)]
        new_vdi = x.VBD.get_VDI(rec["VBDs"][0])
        old_vdi = x.VBD.get_VDI(x.VM.get_VBDs(db)[0])
        assert x.VDI.get_SR(new_vdi) == nfs
        assert x.VDI.get_virtual_size(new_vdi) == x.VDI.get_virtual_size(old_vdi)
        # a running VM cannot be exported; a bad session is refused
        app = x.VM.get_by_name_label("app")[0]
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{sim.url}export?uuid={x.VM.get_uuid(app)}&session_id={s._session}")
        assert b"VM_BAD_POWER_STATE" in e.value.read()
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{sim.url}export?uuid={x.VM.get_uuid(db)}&session_id=OpaqueRef:x")
        assert e.value.code == 403
        bad = urllib.request.Request(f"{sim.url}import?session_id={s._session}&sr_id={nfs}",
                                     data=b"not a tar", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad)
        assert b"IMPORT_ERROR" in e.value.read()
