"""Merging the services' OpenAPI documents."""

from __future__ import annotations

from streamia_gateway.docs import merge_specs


def _spec(path: str, schema: dict) -> dict:
    ref = {"$ref": "#/components/schemas/Item"}
    return {
        "paths": {
            path: {"get": {"responses": {"200": {"content": {"a/b": {"schema": ref}}}}}},
            "/health": {"get": {}},
        },
        "components": {"schemas": {"Item": schema, "Shared": {"type": "string"}}},
    }


def test_clashing_schema_names_are_prefixed_with_the_service() -> None:
    merged = merge_specs(
        {
            "movies": _spec("/api/movies", {"type": "object", "title": "movie"}),
            "ratings": _spec("/api/ratings", {"type": "object", "title": "rating"}),
        },
        routable=lambda p: p.startswith("/api/"),
    )
    schemas = merged["components"]["schemas"]
    assert schemas["Item"]["title"] == "movie"
    assert schemas["RatingsItem"]["title"] == "rating"
    assert set(schemas) == {"Item", "RatingsItem", "Shared"}
    ratings_ref = merged["paths"]["/api/ratings"]["get"]["responses"]["200"]["content"]["a/b"]
    assert ratings_ref["schema"]["$ref"] == "#/components/schemas/RatingsItem"
    assert "/health" not in merged["paths"]
