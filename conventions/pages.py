"""Small HTML pages for people who reach this server outside /api/ (a browser, not the app).

With DEBUG on (sandbox mode, `make run`) Django answers an unknown URL with its debug
page listing every URL pattern; people following a stale 3-D Secure link or typing an
address deserve a page that says what happened and what to do. The API under /api/
keeps its JSON envelope (conventions.errors.ApiErrorPagesMiddleware).
"""

from pathlib import Path

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

FAVICON = (Path(__file__).parent / "static" / "conventions" / "favicon.ico").read_bytes()
MAX_SHOWN_PATH = 200  # characters of the asked-for path a page repeats


def page(title, paragraphs, status=200):
    """A plain page; ApiErrorPagesMiddleware leaves it as it is (`person_page`)."""
    content = render_to_string("conventions/page.html", {"title": title, "paragraphs": paragraphs})
    response = HttpResponse(content, status=status)
    response.person_page = True
    return response


def shown(text):
    return text if len(text) <= MAX_SHOWN_PATH else text[:MAX_SHOWN_PATH] + "…"


def not_found(request):
    """What an unknown address outside /api/ answers, with DEBUG on or off."""
    return page(
        "Page not found",
        [
            format_html("There is no page at <code>{}</code>.", shown(request.path)),
            format_html(
                "This server is the API of the mobile app: its endpoints are under "
                '<code>/api/</code> (JSON), described at <a href="{}">/api/docs/</a> '
                "(the OpenAPI schema is <code>/api/schema/</code>).",
                "/api/docs/",
            ),
        ],
        status=404,
    )


@require_safe
@cache_control(public=True, max_age=7 * 24 * 3600)
def favicon(request):
    """Browsers ask for /favicon.ico with every page (the 3-D Secure page too)."""
    return HttpResponse(FAVICON, content_type="image/x-icon")
