from docvlm.writers.json import main

raise SystemExit(main())
