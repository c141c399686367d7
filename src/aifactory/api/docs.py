"""The API's interactive docs, with every asset served by the facility itself.

FastAPI's default docs page loads Swagger UI from a CDN; a sovereign facility works offline and
calls nobody, so the page here loads the copy packaged in `swagger-ui-bundle`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

NO_FAVICON = "data:,"  # a favicon URL that fetches nothing


def install(app: FastAPI, *, prefix: str) -> None:
    assets = f"{prefix}/static/swagger-ui"
    app.mount(assets, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get(f"{prefix}/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{prefix}/openapi.json",
            title="aifactory API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=NO_FAVICON,
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )
