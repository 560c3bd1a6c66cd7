from django.urls import path

from timebank.web.views import auth, console, home, statements

app_name = "web"

urlpatterns = [
    path("", home.home, name="home"),
    path("sign-in/", auth.sign_in_view, name="sign-in"),
    path("sign-out/", auth.sign_out_view, name="sign-out"),
    path("me/statement/", statements.statement, name="statement"),
    path("me/statement.json", statements.statement_json, name="statement-json"),
    path("me/statement/print/", statements.statement_print, name="statement-print"),
    path("console/people/", console.people_list, name="people"),
    path("console/people/new/", console.person_new, name="person-new"),
    path("console/people/<int:member_id>/", console.person_detail, name="person"),
    path("console/people/<int:member_id>/edit/", console.person_edit, name="person-edit"),
    path("console/people/<int:member_id>/reveal/<slug:what>/", console.person_reveal, name="person-reveal"),
    path("console/people/<int:member_id>/priority/", console.person_priority, name="person-priority"),
    path("console/people/<int:member_id>/bonds/", console.person_bond, name="person-bond"),
    path("console/people/<int:member_id>/statement/", statements.statement, name="person-statement"),
    path(
        "console/people/<int:member_id>/statement.json",
        statements.statement_json,
        name="person-statement-json",
    ),
    path(
        "console/people/<int:member_id>/statement/print/",
        statements.statement_print,
        name="person-statement-print",
    ),
    path("console/bonds/", console.bonds_pending, name="bonds"),
    path("console/audit/", console.audit_log, name="audit"),
    path("console/staff/", console.staff_list, name="staff"),
    path("console/staff/<int:grant_id>/revoke/", console.staff_revoke, name="staff-revoke"),
]
