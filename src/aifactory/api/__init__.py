"""The REST API under /api/v1: thin routers over `aifactory.services`, one error map."""
