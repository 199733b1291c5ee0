"""These notebooks are fixtures for the audit tests (some fail or sleep on purpose): nbval must
not collect them when `make test` runs pytest with --nbval-lax over tests/."""

collect_ignore_glob = ["*.ipynb"]
