"""`render()`: a page, or only its partial for a targeted htmx request, and always
`Vary: HX-Request` so a cache never serves one in place of the other."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader

from app.models import Account, User
from app.web import render
from tests.conftest import Auth

PROBE_TEMPLATES = {
    "htmx_probe/page.html": '<main id="page">{% include "htmx_probe/_part.html" %}</main>',
    "htmx_probe/_part.html": '<div id="part">{{ word }}</div>',
}
PAGE = '<main id="page"><div id="part">hello</div></main>'
PARTIAL = '<div id="part">hello</div>'


@pytest.fixture
def probe_templates(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page and its partial, next to the app's own templates for this test only."""
    loader = ChoiceLoader([DictLoader(PROBE_TEMPLATES), app.jinja_env.loader])  # type: ignore[list-item]
    monkeypatch.setattr(app.jinja_env, "loader", loader)


@pytest.mark.usefixtures("probe_templates")
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, PAGE, id="plain request"),
        pytest.param({"HX-Request": "true"}, PARTIAL, id="htmx"),
        pytest.param({"HX-Request": "true", "HX-Target": "part"}, PARTIAL, id="htmx targeted"),
        pytest.param({"HX-Request": "true", "HX-Boosted": "true"}, PAGE, id="boosted link"),
        pytest.param({"HX-Request": "false"}, PAGE, id="htmx header false"),
    ],
)
def test_render_answers_the_partial_only_to_htmx(
    app: Flask, headers: dict[str, str], expected: str
) -> None:
    with app.test_request_context("/", headers=headers):
        response = render("htmx_probe/page.html", partial="htmx_probe/_part.html", word="hello")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == expected
    assert "HX-Request" in response.vary


@pytest.mark.usefixtures("probe_templates")
@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}])
def test_render_without_a_partial_is_the_page_either_way(
    app: Flask, headers: dict[str, str]
) -> None:
    with app.test_request_context("/", headers=headers):
        response = render("htmx_probe/page.html", word="hello")
    assert response.get_data(as_text=True) == PAGE
    assert "HX-Request" in response.vary


@pytest.mark.parametrize("path", ["/a/{slug}/", "/a/{slug}/seats/"])
@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}])
def test_tenant_pages_vary_on_hx_request(
    client: FlaskClient,
    auth: Auth,
    owner: User,
    account: Account,
    path: str,
    headers: dict[str, str],
) -> None:
    auth.login(owner)
    response = client.get(path.format(slug=account.slug), headers=headers)
    assert response.status_code == 200
    assert "HX-Request" in response.vary
