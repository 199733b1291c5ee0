"""The only code in the suite that talks XenAPI: connecting to a pool and reading its inventory.

Everything else works on `Inventory` objects (live or loaded from a file), so sizing,
planning and postmortems behave the same with or without pool access.
"""

from runbook_lib.xapi.connect import connect
from runbook_lib.xapi.inventory import Inventory, fetch_inventory

__all__ = ["connect", "Inventory", "fetch_inventory"]
