from runbook_lib.cli import main

main()
