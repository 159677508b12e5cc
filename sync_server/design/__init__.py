"""Design documents: JavaScript functions (QuickJS), validate_doc_update, filters, views.

Layer ``design``: may import base, store and security (the user of a request).
"""
