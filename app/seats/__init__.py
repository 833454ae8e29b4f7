"""Seats: add and manage the people whose leads the ISA team works."""

from app.web import tenant_blueprint

bp = tenant_blueprint("seats", __name__, "/seats")

from app.seats import views  # noqa: E402, F401
