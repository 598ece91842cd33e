"""Rows of numbers as a dataset: a CSV or .npy read safely (limits -> table/npy -> loader), or the bundled one."""
