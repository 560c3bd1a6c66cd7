"""Family relations, shared by people (bonds) and policies (who may receive transfers)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Relation(models.TextChoices):
    SPOUSE = "spouse", _("Spouse")
    PARENT = "parent", _("Parent")
    CHILD = "child", _("Child")
    GRANDPARENT = "grandparent", _("Grandparent")
    GRANDCHILD = "grandchild", _("Grandchild")
    SIBLING = "sibling", _("Sibling")
    FRIEND = "friend", _("Friend")


INVERSE_RELATION: dict[str, str] = {
    Relation.SPOUSE: Relation.SPOUSE,
    Relation.PARENT: Relation.CHILD,
    Relation.CHILD: Relation.PARENT,
    Relation.GRANDPARENT: Relation.GRANDCHILD,
    Relation.GRANDCHILD: Relation.GRANDPARENT,
    Relation.SIBLING: Relation.SIBLING,
    Relation.FRIEND: Relation.FRIEND,
}
