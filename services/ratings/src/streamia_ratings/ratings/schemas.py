"""Request and response bodies of API.md's Ratings section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from streamia_catalogue_projection import valid_id
from streamia_kit.db import iso
from streamia_kit.validation import WholeNumber
from streamia_ratings.ratings.models import STARS, Rating


def _movie_id(value: str) -> str:
    if not valid_id(value):
        raise ValueError("Invalid movie id")
    return value


MovieId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_movie_id)]
# Whole stars: "4" and 4.0 are accepted, 4.5 is refused (the distribution is per star).
Stars = Annotated[WholeNumber, Field(ge=1, le=5)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RateIn(_In):
    movieId: MovieId
    rating: Stars


class ChangeRatingIn(_In):
    rating: Stars


@dataclass(frozen=True, slots=True)
class Summary:
    """A movie's ratings by star; the average is rounded to 2 decimals."""

    distribution: dict[int, int]

    @property
    def count(self) -> int:
        return sum(self.distribution.values())

    @property
    def average(self) -> float:
        count = self.count
        total = sum(star * n for star, n in self.distribution.items())
        return round(total / count, 2) if count else 0.0

    @classmethod
    def empty(cls) -> Summary:
        return cls({star: 0 for star in STARS})

    def short(self) -> dict[str, Any]:
        return {"average": self.average, "count": self.count}

    def full(self, movie_id: str) -> dict[str, Any]:
        return {
            "movieId": movie_id,
            "average": self.average,
            "count": self.count,
            "distribution": {str(star): self.distribution.get(star, 0) for star in STARS},
        }


def rating_out(rating: Rating) -> dict[str, Any]:
    return {
        "id": rating.id,
        "_id": rating.id,
        "movieId": rating.movie_id,
        "userId": rating.user_id,
        "rating": rating.rating,
        "createdAt": iso(rating.created_at),
        "updatedAt": iso(rating.updated_at),
    }
