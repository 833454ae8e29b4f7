"""Live usage: where an account stands against its plan."""

from app.web import tenant_blueprint

bp = tenant_blueprint("usage", __name__)

from app.usage import views  # noqa: E402, F401
