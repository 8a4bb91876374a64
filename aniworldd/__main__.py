from aniworldd.cli import main

raise SystemExit(main())
