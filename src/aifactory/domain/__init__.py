"""Entities and rules of the facility as plain values: no I/O, no clock, no database."""
