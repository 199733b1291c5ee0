"""The product a simulated host runs: its API version, `software_version` and edition, which
belong together as on a real host.

xapi fills host.software_version from /etc/xensource-inventory and its own build
(xapi_globs.software_version, create_misc.make_software_version): product_version,
product_version_text(_short), platform_name, platform_version, product_brand, xapi
(major.minor), build_number, hostname ("localhost"), date, xapi_build, xen, linux,
xencenter_min/max (= the API version), network_backend and db_schema. The API version comes
from xapi's build (2.15 for the 1.249 line of Citrix Hypervisor 8.2 and XCP-ng 8.2; 2.21, "XenServer
8" in the datamodel's release table, for the XenServer 8 and XCP-ng 8.3 lines). Sources:
xapi-project/xen-api branches 1.249-lcm, 25.33-lcm, 26.1-lcm (api_version, schema_minor_vsn);
xcp-ng-rpms/xcp-ng-release (PRODUCT_VERSION 8.3.0, PLATFORM_VERSION 3.4.0, BUILD_NUMBER 8.3.0,
synced from xenserver-release 8.4.0, the XenServer 8 release); xcp-ng-rpms/xapi (25.33.1 on 8.3).
The xen, linux, date and XenServer 8's xapi_build values are illustrative (a release of that
line), not read from a given host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runbook_lib.errors import InputError


@dataclass(frozen=True)
class Product:
    name: str
    api_version: tuple[int, int]
    software: dict = field(default_factory=dict)
    edition: str = ""
    editions: tuple[str, ...] = ()

    def software_version(self) -> dict[str, str]:
        api = f"{self.api_version[0]}.{self.api_version[1]}"
        return {**self.software, "hostname": "localhost", "xencenter_min": api, "xencenter_max": api,
                "network_backend": "openvswitch"}


def _software(brand, version, text, platform, xapi, build, schema, xen, linux, date, number=""):
    out = {"product_version": version, "product_version_text": text, "product_version_text_short": text,
           "platform_name": "XCP", "platform_version": platform, "product_brand": brand,
           "xapi": xapi, "date": date, "xapi_build": build, "xen": xen, "linux": linux, "db_schema": schema}
    if number:
        out["build_number"] = number
    return out


PRODUCTS = {p.name: p for p in (
    Product("citrix-hypervisor-8.2", (2, 15),
            _software("XenServer", "8.2.1", "8.2", "3.2.1", "1.249", "1.249.42", "5.603", "4.13.5",
                      "4.19.0+1", "2024-11-14", "release/yangtze/master/58")),
    Product("xcp-ng-8.2", (2, 15),
            _software("XCP-ng", "8.2.1", "8.2", "3.2.1", "1.249", "1.249.42", "5.603", "4.13.5",
                      "4.19.0+1", "2024-11-14", "release/yangtze/master/58"),
            edition="xcp-ng", editions=("xcp-ng",)),
    Product("xenserver-8", (2, 21),
            _software("XenServer", "8.4.0", "8", "3.4.0", "26.1", "26.1.19", "5.799", "4.17.5",
                      "4.19.0+1", "2026-06-02")),
    Product("xcp-ng-8.3", (2, 21),
            _software("XCP-ng", "8.3.0", "8.3", "3.4.0", "25.33", "25.33.1", "5.791", "4.17.5",
                      "4.19.0+1", "2025-11-20", "8.3.0"),
            edition="xcp-ng", editions=("xcp-ng",)),
)}
# a scenario that names no product: the one its SMlog style stands for
BY_STYLE = {"legacy": "citrix-hypervisor-8.2", "modern": "xcp-ng-8.3"}


def product_for(name: str | None, style: str, given: dict | None = None) -> Product:
    """The product a host runs: named in the scenario (`product:`), else the one whose brand and
    version the host's own software_version gives, else the log style's."""
    if name:
        if name not in PRODUCTS:
            raise InputError(f"scenario: unknown product {name!r}", hint="known: " + ", ".join(PRODUCTS))
        return PRODUCTS[name]
    given = given or {}
    for product in PRODUCTS.values():
        if (given.get("product_brand"), given.get("product_version")) == (
                product.software["product_brand"], product.software["product_version"]):
            return product
    return PRODUCTS[BY_STYLE.get(style, "xcp-ng-8.3")]


def host_fields(name: str | None, style: str, given: dict | None = None) -> dict:
    """A host record's product fields: API version, software_version (the host's own keys win)
    and edition."""
    product = product_for(name, style, given)
    return {"API_version_major": product.api_version[0], "API_version_minor": product.api_version[1],
            "software_version": {k: str(v) for k, v in {**product.software_version(), **(given or {})}.items()},
            "edition": product.edition, "editions": list(product.editions)}
