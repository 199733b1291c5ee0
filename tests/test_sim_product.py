"""The product a simulated host runs: API version, software_version and edition belong together
(checked against the datamodel's release table in tests/data/xapi_datamodel.json)."""

import json

import pytest

from runbook_lib.errors import InputError
from runbook_lib.sim.product import BY_STYLE, PRODUCTS, host_fields, product_for
from tests.conftest import ROOT

RELEASES = json.loads((ROOT / "tests" / "data" / "xapi_datamodel.json").read_text())["api_releases"]
# the release-table branding each product line's API version carries
LINE = {"citrix-hypervisor-8.2": "Citrix Hypervisor 8.2", "xcp-ng-8.2": "Citrix Hypervisor 8.2",
        "xenserver-8": "XenServer 8", "xcp-ng-8.3": "XenServer 8"}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_each_product_has_the_api_version_of_its_release(name):
    product = PRODUCTS[name]
    api = f"{product.api_version[0]}.{product.api_version[1]}"
    brandings = {r["branding"] for r in RELEASES if r["api_version"] == api}
    assert LINE[name] in brandings, (name, api, brandings)
    software = product.software_version()
    assert software["xencenter_min"] == software["xencenter_max"] == api
    assert software["product_version"].startswith(software["product_version_text"].split()[0])


def test_a_host_gets_the_named_product_else_the_one_its_keys_name_else_its_styles():
    assert product_for("xenserver-8", "legacy").software["product_version"] == "8.4.0"
    assert product_for(None, "legacy", {"product_brand": "XCP-ng", "product_version": "8.3.0"}).name == "xcp-ng-8.3"
    assert product_for(None, "modern").name == BY_STYLE["modern"] == "xcp-ng-8.3"
    assert product_for(None, "legacy").api_version == (2, 15)      # 8.2.1 is never given API 2.21
    with pytest.raises(InputError):
        product_for("xenserver-9", "modern")


def test_the_hosts_own_keys_win_and_everything_is_a_string():
    fields = host_fields(None, "modern", {"product_brand": "XCP-ng", "product_version": "8.3.0", "build_number": 7})
    assert (fields["API_version_major"], fields["API_version_minor"]) == (2, 21)
    assert fields["software_version"]["build_number"] == "7"
    assert fields["edition"] == "xcp-ng" and fields["editions"] == ["xcp-ng"]
    assert all(isinstance(v, str) for v in fields["software_version"].values())
