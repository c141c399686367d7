"""One module per area of the portal, each an APIRouter of pages (kept out of the OpenAPI)."""
