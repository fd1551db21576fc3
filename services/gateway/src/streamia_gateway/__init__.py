"""Streamia API gateway: a raw ASGI reverse proxy in front of the services (`app.create_app`)."""
