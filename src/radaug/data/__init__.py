"""Data sources: the Br35H example set and the seeded digital phantom."""
