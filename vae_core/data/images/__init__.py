"""Your own images: a folder or a zip of them, read safely into uint8 tensors (source -> decode -> dataset)."""
