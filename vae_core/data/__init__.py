"""Datasets behind one interface and the input normalizations."""
