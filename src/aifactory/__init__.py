"""aifactory: the control plane of a sovereign, shared GPU facility."""

__version__ = "0.1.0"
