"""The Python SDK: `Client(url, token)` speaks the REST API with httpx."""

from aifactory.client.client import ApiError, Client, Unreachable

__all__ = ["ApiError", "Client", "Unreachable"]
