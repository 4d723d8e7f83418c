"""RQ jobs and their scheduling."""
