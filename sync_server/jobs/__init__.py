"""What runs on a schedule or from a command: the kiosk's sync round, the nightly pull, provisioning, publishing, bundles.

Imports base, schemas, store, security, handbook and replication; never the HTTP API.
"""
