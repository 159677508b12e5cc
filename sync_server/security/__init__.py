"""Who is asking and what they hold: accounts, PINs, pairing, TLS, keys, signatures, the audit log.

Imports only the base modules (errors, settings, private_file).
"""
