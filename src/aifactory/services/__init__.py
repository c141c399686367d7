"""Use cases behind the API: each checks who may do it, then reads or writes the store.

Services take a `Session` and a `Principal`, raise only `aifactory.errors`, and never know
about HTTP.
"""
