"""Numbered SQL migrations (`NNNN_name.sql`), applied in order by `persona.storage.migrate`.

A package only so the .sql files install with persona; never edit an applied file,
add a new one.
"""
