"""Call reports: master and seat reports (PDF and CSV) rendered by the worker, and downloads."""

from app.web import tenant_blueprint

bp = tenant_blueprint("reports", __name__, "/reports")

from app.reports import views  # noqa: E402, F401
