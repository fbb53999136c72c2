"""Cogs: thin Discord glue over persona/ (the logic is testable without Discord)."""
