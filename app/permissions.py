"""What each role inside an account may do, declared once."""

from __future__ import annotations

import enum

from app.models import Role


class Permission(enum.StrEnum):
    VIEW_ALL_SEATS = "view_all_seats"
    MANAGE_SEATS = "manage_seats"
    VIEW_REPORTS = "view_reports"
    VIEW_BILLING = "view_billing"
    MANAGE_BILLING = "manage_billing"
    MANAGE_MEMBERS = "manage_members"
    VIEW_AUDIT_LOG = "view_audit_log"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.ADMIN: frozenset(
        {
            Permission.VIEW_ALL_SEATS,
            Permission.MANAGE_SEATS,
            Permission.VIEW_REPORTS,
            Permission.VIEW_AUDIT_LOG,
        }
    ),
    Role.VIEWER: frozenset({Permission.VIEW_ALL_SEATS, Permission.VIEW_REPORTS}),
    # A seat member sees their own seat's usage and reports; views narrow to that seat.
    Role.SEAT_MEMBER: frozenset({Permission.VIEW_REPORTS}),
}


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
