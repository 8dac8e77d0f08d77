"""Files: uploads, their records and their bytes."""
