"""A status report's package list (xen-bugtool's rpm-qa.out)."""

import io
import tarfile
import zipfile

from runbook_lib.status_report import parse_packages, read_packages

RPM_QA = "kernel-4.19.19-8.0.38.xs8.x86_64\nsm-3.2.3-1.7.xcpng8.3.x86_64\nsm-fairlock-3.2.3-1.7.xcpng8.3.x86_64\n" \
         "xapi-core-25.6.0-1.x86_64\ngpg-pubkey-3fd3ac9e-5d5e6c3a\n\n"


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tf:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_parse_rpm_qa_lines():
    packages = parse_packages(RPM_QA)
    assert packages["sm"] == "3.2.3-1.7.xcpng8.3" and packages["sm-fairlock"] == "3.2.3-1.7.xcpng8.3"
    assert packages["xapi-core"] == "25.6.0-1"


def test_read_from_tar_and_zip(tmp_path):
    tar = _tar(tmp_path / "bug-report.tar.gz", {"bug-report-20261110/rpm-qa.out": RPM_QA,
                                                  "bug-report-20261110/var/log/SMlog": "x\n"})
    found = read_packages(tar)
    assert found.packages["sm"] == "3.2.3-1.7.xcpng8.3" and found.path.endswith("rpm-qa.out")
    assert found.hosts == ["bug-report-20261110"]
    zpath = tmp_path / "report.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("h2/rpm-qa.out", "sm-4.1.10-1.xs9.x86_64\n")
        zf.writestr("h1/rpm-qa.out", RPM_QA)
    found = read_packages(zpath)
    assert found.packages["sm"] == "3.2.3-1.7.xcpng8.3" and found.hosts == ["h1", "h2"]   # first by name


def test_no_list_is_an_empty_list_never_an_error(tmp_path):
    assert read_packages(_tar(tmp_path / "r.tar.gz", {"var/log/SMlog": "x\n"})).packages == {}
    plain = tmp_path / "SMlog"
    plain.write_text("not an archive\n")
    assert read_packages(plain).packages == {}
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert read_packages(broken).packages == {}
    assert read_packages(tmp_path / "missing.tar").packages == {}
