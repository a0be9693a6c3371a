"""Drawing shared by several stages: 68-point edge maps and crops (``edgemap``), evaluation
figures and side-by-side videos (``render``), the interactive clip explorer."""
