"""The Train page's parts: its form (form, fields) and its sweep (sweep)."""
