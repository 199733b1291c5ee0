"""Which storage-manager (sm) release the simulated pool runs, and what that release does.

A scenario names it (`sm: {version: "3.2.5-1.xs8"}`, as `rpm -q sm` shows it); without it the
log style decides: `legacy` is the sm 2.30.8 of XenServer / XCP-ng 8.2, `modern` the sm
3.2.12-17 of XenServer 8 / XCP-ng 8.3. The version is never published over XenAPI (nor is it
on a real pool: `SM.version` is each driver's "1.0"); it only decides the GC's behaviour, each
rule from the sm sources (xapi-project/sm tags, xcp-ng-rpms/sm spec changelogs):

- the GC creates the task "Garbage Collection" (183d2bc CP-35367): 2.36.0 on;
- `SM_GC_NO_SPACE` message, `gc_no_space` keys in SR and VDI sm-config (2ef2f75 CP-42675):
  3.2.11 on;
- the SR's `gc_no_space` key is left behind when the shortage ends (fixed by 45a9179):
  3.2.11 to before 4.1.8, except 3.2.12 builds from release 17 (XenServer 8, XCP-ng 8.3);
- on file SRs the leaf's allocated size is read in 2 MiB blocks and compared as bytes, so
  every leaf looks small enough for a live leaf-coalesce (2f863b9 CP-40871, fixed by 5398c7a):
  3.0.11 to before 3.2.12, except XCP-ng 3.2.3 builds from release 1.8.
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook_lib.sm_version import SmVersion, parse_sm_version, version

DEFAULT_BY_STYLE = {"legacy": "2.30.8-1", "modern": "3.2.12-17"}   # the product each style stands for: product.py


def _in(sm: SmVersion, start: str, end: str) -> bool:
    return version(start) <= sm.version < version(end)


def _fixed_by_release(sm: SmVersion, at: str, release: tuple[int, ...]) -> bool:
    return sm.version == version(at) and sm.release is not None and sm.release >= release


@dataclass(frozen=True)
class SmRelease:
    """The simulated sm and the behaviours that depend on its version."""

    sm: SmVersion

    @classmethod
    def from_scenario(cls, scenario: dict, style: str) -> "SmRelease":
        text = str(((scenario.get("sm") or {}).get("version")) or DEFAULT_BY_STYLE.get(style, "3.2.12-17"))
        return cls(parse_sm_version(text, "scenario"))

    @property
    def gc_task(self) -> bool:
        return self.sm.version >= version("2.36.0")

    @property
    def no_space_message(self) -> bool:
        return self.sm.version >= version("3.2.11")

    @property
    def leaves_no_space_key(self) -> bool:
        return _in(self.sm, "3.2.11", "4.1.8") and not _fixed_by_release(self.sm, "3.2.12", (17,))

    @property
    def file_sizes_in_blocks(self) -> bool:
        return _in(self.sm, "3.0.11", "3.2.12") and not _fixed_by_release(self.sm, "3.2.3", (1, 8))


# the storage drivers a host lists as SM records: type, DRIVER_INFO name and vendor, driver file
DRIVERS = (
    ("lvm", "Local VHD on LVM", "XenSource Inc", "LVHDSR"),
    ("lvmoiscsi", "LVHD over iSCSI", "Citrix Systems Inc", "LVHDoISCSISR"),
    ("lvmohba", "LVHD over FC", "Citrix Systems Inc", "LVHDoHBASR"),
    ("ext", "Local EXT3 VHD", "Citrix Systems Inc", "EXTSR"),
    ("nfs", "NFS VHD", "Citrix Systems Inc", "NFSSR"),
    ("smb", "SMB VHD", "Citrix Systems Inc", "SMBSR"),
    ("file", "Local Path VHD", "Citrix Systems Inc", "FileSR"),
    ("iso", "ISO", "Citrix Systems Inc", "ISOSR"),
    ("udev", "udev", "Citrix Systems Inc", "udevSR"),
)


def sm_records() -> list[dict]:
    """The SM records a host registers (xapi reads each driver's DRIVER_INFO)."""
    return [{"name_label": name, "type": kind, "vendor": vendor, "version": "1.0",
             "required_api_version": "1.1" if kind == "udev" else "1.0",
             "driver_filename": f"/opt/xensource/sm/{driver}"} for kind, name, vendor, driver in DRIVERS]
