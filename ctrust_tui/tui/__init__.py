"""Textual app. Consumes runner events and the store only; never imports torch at import time."""
