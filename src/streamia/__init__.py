"""The `streamia` command line and the platform runner. Kept light: `streamia --version`
imports only this package and the CLI, never the services."""

HTTP_SERVICES = ("users", "movies", "favorites", "ratings", "comments", "notifications", "playback")
ALL_SERVICES = (*HTTP_SERVICES, "gateway")
