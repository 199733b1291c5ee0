"""The fields of xapi's records that the simulator carries but does not act on.

A real `get_record` / `get_all_records` returns every field of the class (tests/data/
xapi_datamodel.json lists them, with the xapi commit they were read from); clients such as
Xen Orchestra keep whole records. model.FIELDS is these defaults overlaid with the fields the
simulator manages, so each record has the complete field list with the datamodel's wire types.
Values are the datamodel's defaults, or what a freshly installed host shows where the default
is empty but a real pool never is (a VM's actions after shutdown, a host's capabilities).
"""

from __future__ import annotations

from runbook_lib.sim.clock import XDate

NULL = "OpaqueRef:NULL"
EPOCH = XDate("19700101T00:00:00Z")

_QOS = dict(qos_algorithm_type="", qos_algorithm_params={}, qos_supported_algorithms=[])
_DEVICE_STATUS = dict(status_code=0, status_detail="", runtime_properties={})

PASSIVE: dict[str, dict] = {
    "pool": dict(
        suspend_image_SR=NULL, crash_dump_SR=NULL, ha_configuration={}, ha_statefiles=[],
        ha_host_failures_to_tolerate=0, ha_plan_exists_for=0, ha_allow_overcommit=False,
        ha_overcommitted=False, blobs={}, tags=[], gui_config={}, health_check_config={},
        wlb_url="", wlb_username="", wlb_enabled=False, wlb_verify_cert=False,
        redo_log_enabled=False, redo_log_vdi=NULL, vswitch_controller="", restrictions={},
        metadata_VDIs=[], ha_cluster_stack="xhad", allowed_operations=[], current_operations={},
        guest_agent_config={}, cpu_info={"cpu_count": "16", "socket_count": "1", "vendor": "GenuineIntel"},
        policy_no_vendor_device=False, live_patching_disabled=False, igmp_snooping_enabled=False,
        uefi_certificates="", custom_uefi_certificates="", is_psr_pending=False,
        tls_verification_enabled=True, repositories=[], client_certificate_auth_enabled=False,
        client_certificate_auth_name="", repository_proxy_url="", repository_proxy_username="",
        repository_proxy_password=NULL, migration_compression=False, coordinator_bias=True,
        local_auth_max_threads=8, ext_auth_max_threads=1, telemetry_uuid=NULL,
        telemetry_frequency="weekly", telemetry_next_collection=EPOCH, last_update_sync=EPOCH,
        update_sync_frequency="weekly", update_sync_day=0, update_sync_enabled=False,
        ext_auth_cache_enabled=True, ext_auth_cache_size=50, ext_auth_cache_expiry=300,
        recommendations={}, license_server={}, ha_reboot_vm_on_internal_shutdown=True,
        limit_console_sessions=False, vm_console_idle_timeout=0,
        auto_update_vm_secureboot_certificates=False),
    "host": dict(
        memory_overhead=0, allowed_operations=["provision", "evacuate", "vm_start", "vm_resume", "vm_migrate"],
        current_operations={}, API_version_vendor="XenSource", API_version_vendor_implementation={},
        capabilities=["xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64"],
        cpu_configuration={}, sched_policy="credit", supported_bootloaders=["pygrub", "eliloader"],
        logging={}, PIFs=[], suspend_image_sr=NULL, crash_dump_sr=NULL, crashdumps=[], patches=[],
        updates=[], host_CPUs=[], cpu_info={"cpu_count": "16", "socket_count": "1", "vendor": "GenuineIntel"},
        metrics=NULL, license_params={}, ha_statefiles=[], ha_network_peers=[], blobs={}, tags=[],
        external_auth_type="", external_auth_service_name="", external_auth_configuration={},
        edition="", license_server={"address": "localhost", "port": "27000"}, bios_strings={},
        power_on_mode="", power_on_config={}, local_cache_sr=NULL, chipset_info={"iommu": "true"},
        PCIs=[], PGPUs=[], PUSBs=[], ssl_legacy=False, guest_VCPUs_params={}, display="enabled",
        virtual_hardware_platform_versions=[0, 1, 2], control_domain=NULL, updates_requiring_reboot=[],
        features=[], iscsi_iqn="", multipathing=False, uefi_certificates="", certificates=[],
        editions=[], pending_guidances=[], tls_verification_enabled=True, last_software_update=EPOCH,
        https_only=False, latest_synced_updates_applied="unknown", numa_affinity_policy="default_policy",
        pending_guidances_recommended=[], pending_guidances_full=[], last_update_hash="",
        ssh_enabled=True, ssh_enabled_timeout=0, ssh_expiry=EPOCH, console_idle_timeout=0,
        ssh_auto_mode=False, max_cstate="", secure_boot=False, ntp_mode="Factory", ntp_custom_servers=[],
        timezone="UTC"),
    "SR": dict(blobs={}, local_cache_enabled=False, introduced_by=NULL, clustered=False, is_tools_sr=False),
    "VDI": dict(crash_dumps=[], storage_lock=False, parent=NULL, metadata_of_pool=NULL, metadata_latest=False,
                is_tools_iso=False),
    "VM": dict(
        user_version=1, is_default_template=False, suspend_VDI=NULL, scheduled_to_be_resident_on=NULL,
        memory_overhead=11534336, memory_target=1073741824, memory_dynamic_min=1073741824,
        memory_static_min=1073741824, VCPUs_params={}, actions_after_softreboot="soft_reboot",
        actions_after_shutdown="destroy", actions_after_reboot="restart", actions_after_crash="restart",
        consoles=[], VUSBs=[], crash_dumps=[], VTPMs=[], PV_kernel="", PV_ramdisk="", PV_args="",
        PV_bootloader_args="", PV_legacy_args="", HVM_boot_params={"order": "cd"}, HVM_shadow_multiplier=1.0,
        platform={"timeoffset": "0", "device-model": "qemu-upstream-compat", "acpi": "1", "apic": "true",
                  "pae": "true", "nx": "true", "viridian": "false", "vga": "std", "videoram": "8"},
        PCI_bus="", domid=-1, domarch="", last_boot_CPU_flags={}, guest_metrics=NULL, last_booted_record="",
        recommendations="", xenstore_data={}, ha_always_run=False, transportable_snapshot_id="", blobs={},
        snapshot_info={}, snapshot_metadata="", parent=NULL, bios_strings={}, protection_policy=NULL,
        is_snapshot_from_vmpp=False, snapshot_schedule=NULL, is_vmss_snapshot=False, appliance=NULL,
        start_delay=0, shutdown_delay=0, order=0, VGPUs=[], attached_PCIs=[], suspend_SR=NULL, version=0,
        generation_id="0:0", hardware_platform_version=0, has_vendor_device=False, requires_reboot=False,
        reference_label="", domain_type="hvm", NVRAM={}, pending_guidances=[],
        pending_guidances_recommended=[], pending_guidances_full=[], groups=[],
        secureboot_certificates_state="ok"),
    "VBD": dict(storage_lock=False, metrics=NULL, **_DEVICE_STATUS, **_QOS),
    "VIF": dict(metrics=NULL, ipv4_configuration_mode="None", ipv4_addresses=[], ipv4_gateway="",
                ipv6_configuration_mode="None", ipv6_addresses=[], ipv6_gateway="", trunks=[],
                **_DEVICE_STATUS, **_QOS),
    "network": dict(allowed_operations=[], current_operations={}, PIFs=[], managed=True, blobs={}, tags=[],
                    default_locking_mode="unlocked", assigned_ips={}, purpose=[]),
    "task": dict(subtask_of=NULL, backtrace="()"),
    "VM_metrics": dict(VCPUs_utilisation={}, VCPUs_CPU={}, VCPUs_params={}, VCPUs_flags={}, hvm=False,
                       nested_virt=False, nomigrate=False, current_domain_type="unspecified",
                       numa_optimised=False, numa_nodes=0, numa_node_memory={}),
    "SM": dict(supported_image_formats=[]),
}
