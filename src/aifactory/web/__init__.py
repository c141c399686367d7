"""The portal: server-rendered pages served by the facility itself, next to `/api/v1`.

Pages call the same services as the API, with the same `Principal` and so the same permission
matrix; the browser holds a session cookie (services.login) instead of a token. Every asset is
served from `web/static`: no CDN, no outside call. See docs/portal.md for the choices.
"""
