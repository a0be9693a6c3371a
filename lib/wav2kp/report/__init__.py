"""``wav2kp report``: runs notebooks 01-06 with papermill and renders the diary
(``reports/index.html``) with its browser check."""
