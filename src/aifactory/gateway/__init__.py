"""The facility's OpenAI-compatible gateway (`/v1`): the third face, beside the API and the
portal, over the same services (services.gateway, services.endpoints)."""
