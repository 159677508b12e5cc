"""JSON Schemas (draft 2020-12) of the handbook's documents, their examples, and the hierarchy.

``<type>.schema.json`` for each name in ``DOCUMENT_TYPES``, ``hierarchy.schema.json`` for one
row of the hierarchy file, and ``examples/<type>/{valid,invalid}-*.json``. ``MODEL.md`` explains
the model; ``sync_server/handbook/validation.py`` applies the schemas (and the rules a schema cannot state)
to every write. ``hierarchy.py`` reads a province's hierarchy file.
"""

from __future__ import annotations

from pathlib import Path

# Where the *.schema.json files live (package data: installs must ship them with this package).
SCHEMA_DIR = Path(__file__).resolve().parent
# Every value a document's ``type`` field may take, in MODEL.md's order.
DOCUMENT_TYPES = ("unit", "member", "device", "meeting", "minutes", "attendance", "feedback", "reading", "article",
                  "cert_request", "certificate")

__all__ = ["DOCUMENT_TYPES", "SCHEMA_DIR"]
