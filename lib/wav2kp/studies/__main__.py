"""``python -m wav2kp.studies COMMAND``: the lever study's and the result pages' commands."""

from wav2kp.studies.__main__ import main

raise SystemExit(main())
