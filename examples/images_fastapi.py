"""The images API in FastAPI: each route declares its permission as a dependency,
``Depends(permission(...))``, which also hands the endpoint the caller's ``Session``;
``IAMGuardMiddleware`` decides every request before FastAPI runs it, and denies any route
that declares nothing.

Run it (from the repository root, on the store ``iamguard demo`` made)::

    iamguard demo --framework fastapi               # sets up the store and runs this app
    uvicorn examples.images_fastapi:app --port 8000  # then http://127.0.0.1:8000/docs

``create_app(guard)`` builds the app on any Guard; the module-level ``app`` opens the demo
store (``$IAMGUARD_STORE``, default ``sqlite:///iamguard-demo.db``) when it is first read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI
from fastapi.responses import JSONResponse

from examples.images_store import ABOUT, IMAGE, IMAGES, ImageNotFound, Images, demo_app, not_found
from iamguard import Guard
from iamguard.integrations.starlette import (
    IAMGuardHTTPException,
    IAMGuardMiddleware,
    exception_handler,
    permission,
    public,
)
from iamguard.integrations.token_routes import sts_routes
from iamguard.sessions import Session

__all__ = ["create_app"]

# FastAPI's own pages: public, like the token endpoint.
DOCS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")

# Each dependency declares its route's permission and gives the endpoint the caller's Session.
# (At module level: with `from __future__ import annotations`, FastAPI resolves them here.)
List = Annotated[Session, Depends(permission("images:ListImages", resource=IMAGES))]
Get = Annotated[Session, Depends(permission("images:GetImage", resource=IMAGE))]
Put = Annotated[Session, Depends(permission("images:PutImage", resource=IMAGE))]
Delete = Annotated[Session, Depends(permission("images:DeleteImage", resource=IMAGE))]


def create_app(guard: Guard, images: Images | None = None) -> FastAPI:
    """The images app over ``guard``, serving ``images`` (default: a fresh seeded set)."""
    images = images or Images()
    app = FastAPI(title="images", description="The iamguard example images API")
    app.add_exception_handler(IAMGuardHTTPException, exception_handler)

    @app.get("/")
    @public
    async def about() -> dict[str, Any]:
        return ABOUT

    @app.get("/images")
    async def list_images(session: List) -> dict[str, Any]:
        return {"Images": images.list()}

    @app.get("/images/{image_id:path}", response_model=None)
    async def get_image(image_id: str, session: Get) -> dict[str, Any] | JSONResponse:
        try:
            return images.get(image_id)
        except ImageNotFound:
            return JSONResponse(not_found(image_id), status_code=404)

    @app.put("/images/{image_id:path}")
    async def put_image(
        image_id: str, session: Put, body: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        return images.put(image_id, body or {}, session.principal)

    @app.delete("/images/{image_id:path}", response_model=None)
    async def delete_image(image_id: str, session: Delete) -> dict[str, Any] | JSONResponse:
        try:
            images.delete(image_id)
        except ImageNotFound:
            return JSONResponse(not_found(image_id), status_code=404)
        return {"Deleted": image_id}

    # The token endpoint: public, it authenticates its callers itself.
    app.router.routes.extend(sts_routes(guard))
    for route in app.routes:
        if getattr(route, "path", None) in DOCS:
            public(route.endpoint)  # type: ignore[attr-defined]
    app.add_middleware(IAMGuardMiddleware, guard=guard)
    return app


# ``app``: the app over the demo store, built when first read.
__getattr__ = demo_app(__name__, create_app)
