"""Reads of the API package: a user's tokens."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from timebank.api.models import ApiToken
from timebank.common.errors import NotFound, PermissionDenied
from timebank.people.access import Perm, access_has
from timebank.people.models import Member, User
from timebank.people.selectors import member_get


def token_holder(actor: User, member_id: int | None) -> User:
    """Whose tokens ``actor`` means: their own, or (staff) those of a member of their communities."""
    if member_id is None:
        return actor
    member: Member = member_get(actor, member_id)
    if not access_has(actor, Perm.PEOPLE_MANAGE, member.home_region):
        raise PermissionDenied(_("Only staff of the member's community manage their tokens."))
    user = User.objects.filter(member=member).first()
    if user is None:
        raise NotFound(_("This member has no sign-in."), code="api_no_sign_in")
    return user


def tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def token_get(actor: User, token_id: int) -> ApiToken:
    """A token of the actor's, or of a member their staff role manages; anything else is not found."""
    token = ApiToken.objects.select_related("user__member__home_region").filter(pk=token_id).first()
    if token is None:
        raise NotFound(code="api_token_not_found")
    if token.user_id == actor.pk:
        return token
    member = token.user.member
    if member is None or not access_has(actor, Perm.PEOPLE_MANAGE, member.home_region):
        raise NotFound(code="api_token_not_found")
    return token
