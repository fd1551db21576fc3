"""HTTP endpoints of API.md's Ratings section: parse, call the service, shape the response."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from streamia_kit.dependencies import CurrentUser, ReadSession, WriteSession
from streamia_kit.lists import list_response
from streamia_kit.openapi import errors
from streamia_ratings.dependencies import PageDep, RatingsServiceDep
from streamia_ratings.ratings import schemas

router = APIRouter(prefix="/api/ratings", tags=["ratings"])


@router.post("", status_code=201, responses={200: {"description": "Rating updated"}, **errors(409)})
async def rate(
    body: schemas.RateIn,
    identity: CurrentUser,
    ratings: RatingsServiceDep,
    session: WriteSession,
) -> Any:
    result = await ratings.rate(session, identity, body)
    message = "Rating created successfully" if result.created else "Rating updated successfully"
    return JSONResponse(
        {
            "message": message,
            "rating": schemas.rating_out(result.rating),
            "summary": result.summary.short(),
        },
        status_code=201 if result.created else 200,
    )


# Declared before `/{user_id}` so that `movie` is never read as a user id.
@router.get("/movie/{movie_id}")
async def movie_summary(movie_id: str, ratings: RatingsServiceDep, session: ReadSession) -> Any:
    return await ratings.movie_summary(session, movie_id)


@router.get("/{user_id}")
async def user_ratings(
    user_id: str,
    identity: CurrentUser,
    ratings: RatingsServiceDep,
    page: PageDep,
    request: Request,
    session: ReadSession,
) -> Any:
    found, total = await ratings.list_for_user(session, identity, user_id, page.offset, page.limit)
    return list_response(request, [schemas.rating_out(r) for r in found], total, page)


@router.put("/{rating_id}")
async def change_rating(
    rating_id: str,
    body: schemas.ChangeRatingIn,
    identity: CurrentUser,
    ratings: RatingsServiceDep,
    session: WriteSession,
) -> Any:
    result = await ratings.change(session, identity, rating_id, body)
    return {
        "message": "Rating updated successfully",
        "rating": schemas.rating_out(result.rating),
        "summary": result.summary.short(),
    }


@router.delete("/{rating_id}")
async def delete_rating(
    rating_id: str,
    identity: CurrentUser,
    ratings: RatingsServiceDep,
    session: WriteSession,
) -> Any:
    summary = await ratings.remove(session, identity, rating_id)
    return {"message": "Rating deleted successfully", "summary": summary.short()}
