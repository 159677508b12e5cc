"""A CouchDB-compatible replica on SQLite, served over HTTP by Flask, and the handbook around it.

Layers, lowest first; each imports only the layers above it in this list (tests/test_layers.py
checks it on every import, including those inside functions):

1. base: ``errors``, ``settings``, ``private_file``, ``sync_status``: nothing of the project;
2. ``schemas/``: base;
3. ``store/``: the SQLite document store: base;
4. ``security/``: accounts, PINs, pairing, TLS, keys, signatures, audit: base;
5. ``replication/`` (top-level): the replication protocol over a Peer: base and store;
6. ``design/``: design documents' JavaScript (QuickJS), validate_doc_update, filters, views:
   base, store, security;
7. ``handbook/``: the handbook's documents, rules and reports: base, schemas, store, security, design;
8. ``api/`` with ``app.py`` (HTTP), and ``jobs/`` (scheduled and command work): siblings that never
   import each other; jobs may use replication, api may not;
9. ``cli/``: anything.
"""

__version__ = "0.1.0"
