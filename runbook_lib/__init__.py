"""xen-coalesce-runbooks: the shared library behind the runbook notebooks.

Notebooks stay thin and call into this package; every piece of logic lives here and is
unit-tested. Data flows one way: raw input -> parsed records (DataFrames) -> findings ->
what a notebook or the CLI shows.
"""

__version__ = "0.1.0"
