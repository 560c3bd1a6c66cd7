"""Regions (read)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Schema

from timebank.api.main import api
from timebank.regions.selectors import region_get


class RegionOut(Schema):
    code: str
    name: str
    name_en: str
    level: str
    parent: str | None


@api.get("/regions/{code}", response=RegionOut, tags=["regions"])
def region(request: HttpRequest, code: str) -> dict[str, Any]:
    found = region_get(code)
    return {
        "code": found.code,
        "name": found.name,
        "name_en": found.name_en,
        "level": found.level,
        "parent": found.parent.code if found.parent_id and found.parent else None,
    }
