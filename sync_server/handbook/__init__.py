"""The party handbook's documents: schemas checked, who may write what, signed content, reports, sample data.

Imports base, schemas, store and security; never HTTP, jobs or the CLI.
"""
