from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from timebank.common.errors import NotFound
from timebank.regions.models import Policy, Region


def region_get(code: str) -> Region:
    try:
        return Region.objects.get(code=code)
    except Region.DoesNotExist as exc:
        raise NotFound(
            _("No region with code “%(code)s”.") % {"code": code}, code="region_not_found"
        ) from exc


def region_find(code: str) -> Region | None:
    """The region with ``code``, or None: for an input field naming one (a miss is that field's error)."""
    return Region.objects.filter(code=code).first()


def region_children(parent: Region | None) -> QuerySet[Region]:
    """The regions directly below ``parent``; the roots of the tree when ``parent`` is None."""
    if parent is None:
        return Region.objects.filter(parent__isnull=True)
    return Region.objects.filter(parent=parent)


def region_subtree(region: Region, *, include_self: bool = True) -> QuerySet[Region]:
    qs = Region.objects.filter(path__startswith=region.path)
    return qs if include_self else qs.exclude(pk=region.pk)


def region_ancestors(region: Region) -> QuerySet[Region]:
    """The root-to-node chain, including the node itself, in that order."""
    return Region.objects.filter(code__in=region.ancestor_codes).order_by("depth")


def policy_in_force(region: Region, on: dt.date) -> Policy | None:
    """The rules for ``region`` on day ``on``: the nearest ancestor (or the node itself) with a version in
    force, and of that node's versions the latest one that has taken effect."""
    return (
        Policy.objects.filter(region__code__in=region.ancestor_codes, effective_from__lte=on)
        .select_related("region")
        .order_by("-region__depth", "-effective_from", "-version")
        .first()
    )


def policy_versions(region: Region) -> QuerySet[Policy]:
    return Policy.objects.filter(region=region).order_by("-effective_from", "-version")
