"""The page parts for runs on rows of numbers (a dataset of kind "vectors")."""
