"""The images API in Starlette, every route decided by ``IAMGuardMiddleware``.

Run it (from the repository root, on the store ``iamguard demo`` made)::

    iamguard demo                                   # sets up the store and runs this app
    uvicorn examples.images_starlette:app --port 8000

``create_app(guard)`` builds the app on any Guard (the tests pass one over an in-memory store);
the module-level ``app`` opens the demo store (``$IAMGUARD_STORE``, default
``sqlite:///iamguard-demo.db``) when it is first read.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from examples.images_store import ABOUT, IMAGE, IMAGES, ImageNotFound, Images, demo_app, not_found
from iamguard import Guard
from iamguard.integrations.starlette import IAMGuardMiddleware, public, requires
from iamguard.integrations.token_routes import sts_routes

__all__ = ["create_app"]


def create_app(guard: Guard, images: Images | None = None) -> Starlette:
    """The images app over ``guard``, serving ``images`` (default: a fresh seeded set)."""
    images = images or Images()

    @public
    async def about(request: Request) -> Response:
        return JSONResponse(ABOUT)

    @requires("images:ListImages", resource=IMAGES)
    async def list_images(request: Request) -> Response:
        return JSONResponse({"Images": images.list()})

    @requires("images:GetImage", resource=IMAGE)
    async def get_image(request: Request) -> Response:
        image_id = request.path_params["image_id"]
        try:
            return JSONResponse(images.get(image_id))
        except ImageNotFound:
            return JSONResponse(not_found(image_id), status_code=404)

    @requires("images:PutImage", resource=IMAGE)
    async def put_image(request: Request) -> Response:
        body: Any = await request.json() if await request.body() else {}
        if not isinstance(body, dict):
            body = {}
        image = images.put(request.path_params["image_id"], body, request.user.identity)
        return JSONResponse(image)

    @requires("images:DeleteImage", resource=IMAGE)
    async def delete_image(request: Request) -> Response:
        image_id = request.path_params["image_id"]
        try:
            images.delete(image_id)
        except ImageNotFound:
            return JSONResponse(not_found(image_id), status_code=404)
        return JSONResponse({"Deleted": image_id})

    routes = [
        Route("/", about, methods=["GET"]),
        Route("/images", list_images, methods=["GET"]),
        Route("/images/{image_id:path}", get_image, methods=["GET"]),
        Route("/images/{image_id:path}", put_image, methods=["PUT"]),
        Route("/images/{image_id:path}", delete_image, methods=["DELETE"]),
        *sts_routes(guard),  # the token endpoint: public, it authenticates its callers itself
    ]
    middleware = [Middleware(IAMGuardMiddleware, guard=guard)]
    return Starlette(routes=routes, middleware=middleware)


# ``app``: the app over the demo store, built when first read.
__getattr__ = demo_app(__name__, create_app)
