"""The images API in Flask, every view declared with the ``IAMGuard`` extension.

Run it (from the repository root, on the store ``iamguard demo`` made)::

    iamguard demo --framework flask                   # sets up the store, runs it in waitress
    flask --app examples.images_flask run --port 8000

``create_app(guard)`` builds the app on any Guard; the module-level ``app`` opens the demo
store (``$IAMGUARD_STORE``, default ``sqlite:///iamguard-demo.db``) when it is first read.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from examples.images_store import ABOUT, IMAGE, IMAGES, ImageNotFound, Images, demo_app, not_found
from iamguard import Guard
from iamguard.integrations.flask import IAMGuard, current_principal
from iamguard.integrations.token_routes import sts_blueprint

__all__ = ["create_app"]


def create_app(guard: Guard, images: Images | None = None) -> Flask:
    """The images app over ``guard``, serving ``images`` (default: a fresh seeded set)."""
    images = images or Images()
    app = Flask(__name__)
    iam = IAMGuard(guard=guard)

    @app.get("/")
    @iam.public
    def about() -> ResponseReturnValue:
        return jsonify(ABOUT)

    @app.get("/images")
    @iam.require("images:ListImages", resource=IMAGES)
    def list_images() -> ResponseReturnValue:
        return jsonify({"Images": images.list()})

    @app.get("/images/<path:image_id>")
    @iam.require("images:GetImage", resource=IMAGE)
    def get_image(image_id: str) -> ResponseReturnValue:
        try:
            return jsonify(images.get(image_id))
        except ImageNotFound:
            return jsonify(not_found(image_id)), 404

    @app.put("/images/<path:image_id>")
    @iam.require("images:PutImage", resource=IMAGE)
    def put_image(image_id: str) -> ResponseReturnValue:
        body: Any = request.get_json(silent=True)
        principal = current_principal.principal
        return jsonify(images.put(image_id, body if isinstance(body, dict) else {}, principal))

    @app.delete("/images/<path:image_id>")
    @iam.require("images:DeleteImage", resource=IMAGE)
    def delete_image(image_id: str) -> ResponseReturnValue:
        try:
            images.delete(image_id)
        except ImageNotFound:
            return jsonify(not_found(image_id)), 404
        return jsonify({"Deleted": image_id})

    # The token endpoint: public, it authenticates its callers itself.
    app.register_blueprint(sts_blueprint(guard))
    iam.init_app(app)
    return app


# ``app``: the app over the demo store, built when first read.
__getattr__ = demo_app(__name__, create_app)
