"""Accounting: what was used, what it cost, and the statements built from it."""
