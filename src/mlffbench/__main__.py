from mlffbench.cli import main

raise SystemExit(main())
