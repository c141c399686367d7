"""Governance: what the facility must be able to prove about its use. Today the audit log
(`governance.audit`): every security- or compliance-relevant action, hash-chained so that any
change to its history is seen. Datasets, grants, residency, retention and erasure come here too.
"""
