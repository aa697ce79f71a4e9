"""What the three example images apps share: the images they serve (in memory), their routes'
permissions, and the demo store their module-level ``app`` opens.

The apps are the same small API in Starlette (``images_starlette``), FastAPI
(``images_fastapi``) and Flask (``images_flask``)::

    GET    /images              images:ListImages   arn:iamguard:images::{account}:image/*
    GET    /images/{image_id}   images:GetImage     arn:iamguard:images::{account}:image/{image_id}
    PUT    /images/{image_id}   images:PutImage     (the same resource)
    DELETE /images/{image_id}   images:DeleteImage  (the same resource)
    GET    /                    public: what this is
    POST   /sts/session, /sts/assume-role, ...      public: the token endpoint

An image id may hold ``/`` (``home/ram/cat.png``): the resource keeps it, so a policy on
``image/home/${aws:username}/*`` gives each developer a folder of their own.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from iamguard import Guard
from iamguard.stores import open_store

STORE_ENV: Final = "IAMGUARD_STORE"
DEMO_STORE: Final = "sqlite:///iamguard-demo.db"
ISSUER: Final = "iamguard-demo"
AUDIENCE: Final = "images"

App = TypeVar("App")

IMAGES: Final = "arn:iamguard:images::{account}:image/*"
IMAGE: Final = "arn:iamguard:images::{account}:image/{image_id:path}"
PERMISSIONS: Final = {  # method -> action, for /images/{image_id}
    "GET": "images:GetImage",
    "PUT": "images:PutImage",
    "DELETE": "images:DeleteImage",
}
ABOUT: Final = {
    "Service": "images",
    "Routes": {
        "GET /images": "images:ListImages",
        **{f"{method} /images/{{image_id}}": action for method, action in PERMISSIONS.items()},
    },
    "SignIn": "POST /sts/session with your access key (HTTP basic auth)",
}

SEED: Final = (
    {"ImageId": "1", "Title": "Sunrise over the harbour", "ContentType": "image/png"},
    {"ImageId": "2", "Title": "The team at the offsite", "ContentType": "image/jpeg"},
    {"ImageId": "3", "Title": "Architecture diagram", "ContentType": "image/svg+xml"},
    {"ImageId": "home/ram/cat.png", "Title": "Ram's cat", "ContentType": "image/png"},
)


class ImageNotFound(KeyError):
    """No image has that id."""


class Images:
    """The images an app serves: a dict behind a lock, seeded with ``SEED``."""

    def __init__(self, seed: tuple[Mapping[str, Any], ...] = SEED) -> None:
        self._lock = threading.Lock()
        self._images: dict[str, dict[str, Any]] = {i["ImageId"]: dict(i) for i in seed}

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(self._images[k]) for k in sorted(self._images)]

    def get(self, image_id: str) -> dict[str, Any]:
        with self._lock:
            if image_id not in self._images:
                raise ImageNotFound(image_id)
            return dict(self._images[image_id])

    def put(self, image_id: str, body: Mapping[str, Any], owner: str) -> dict[str, Any]:
        """Create or replace an image from a JSON body (``Title``, ``ContentType``)."""
        image = {
            "ImageId": image_id,
            "Title": str(body.get("Title", image_id)),
            "ContentType": str(body.get("ContentType", "application/octet-stream")),
            "UploadedBy": owner,
        }
        with self._lock:
            self._images[image_id] = image
        return dict(image)

    def delete(self, image_id: str) -> None:
        with self._lock:
            if self._images.pop(image_id, None) is None:
                raise ImageNotFound(image_id)


def not_found(image_id: str) -> dict[str, Any]:
    """The body of a 404, in the same shape as iamguard's errors."""
    return {"Error": {"Code": "NoSuchImage", "Message": f"image `{image_id}` does not exist"}}


def demo_guard(url: str | None = None) -> Guard:
    """The Guard over the demo store: ``url``, else ``$IAMGUARD_STORE``, else
    ``sqlite:///iamguard-demo.db`` (create it with ``iamguard demo``)."""
    store = open_store(url or os.environ.get(STORE_ENV) or DEMO_STORE, create=False)
    return Guard(store, issuer=ISSUER, audience=AUDIENCE)


def demo_app(module: str, create_app: Callable[[Guard], App]) -> Callable[[str], App]:
    """A module ``__getattr__`` that builds the module's ``app`` over the demo store the first
    time ``app`` is read, and keeps it there (importing the module opens no store)."""

    def __getattr__(name: str) -> App:
        if name != "app":
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        app = create_app(demo_guard())
        vars(sys.modules[module])["app"] = app
        return app

    return __getattr__
