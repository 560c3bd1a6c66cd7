from timebank.people.access import Perm, access_has


def test_staff_scope_is_their_subtree(yandang_staff, tree, elder, jinyang_elder):
    # given staff of 雁荡 / when they look / then 雁荡 is theirs and 晋阳 is not
    assert access_has(yandang_staff, Perm.PEOPLE_VIEW, tree["310101023001"])
    assert not access_has(yandang_staff, Perm.PEOPLE_VIEW, tree["310109018021"])
