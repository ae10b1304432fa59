"""The one-node Slurm test cluster: its start/stop script, smoke workflow and test harness."""
