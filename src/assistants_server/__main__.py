"""`python -m assistants_server` is the `assistants-server` command."""

from assistants_server.cli import main

raise SystemExit(main())
