"""Framework adapters: ASGI (Starlette, FastAPI) and Flask."""
