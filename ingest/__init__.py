"""Importers: one module per source of the owner's history (Discord package, DCE, notes, ...)."""
