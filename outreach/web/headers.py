"""Security headers on every response, set by the maintained ``secure`` package's ASGI middleware.

Our pages (call centre, unsubscribe, their error pages) load nothing from anywhere: no scripts,
no images, no fonts. Their policy allows only their own inline stylesheet, forms posting back to
this site, and no framing at all (``frame-ancestors 'none'``, and X-Frame-Options for old
browsers): the unsubscribe page's one button must never sit under someone else's page.
No referrer leaves a page: the unsubscribe URL carries the customer's token.

FastAPI's API docs (/docs, /redoc) are third-party pages that need their own scripts: they get a
looser policy of their own, still never framed.
"""

from __future__ import annotations

from secure import ContentSecurityPolicy, ReferrerPolicy, Secure, XContentTypeOptions, XFrameOptions
from secure.middleware import SecureASGIMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
_CDN = "https://cdn.jsdelivr.net"  # where FastAPI's docs pages load Swagger UI and ReDoc from


def _secure(csp: ContentSecurityPolicy) -> Secure:
    return Secure(
        csp=csp,
        xcto=XContentTypeOptions(),  # nosniff
        referrer=ReferrerPolicy().no_referrer(),
        xfo=XFrameOptions().deny(),
    )


PAGES = _secure(
    ContentSecurityPolicy()
    .default_src("'none'")
    # the pages' own <style>, a few style attributes and the preference centre's stylesheet; no script
    .style_src("'self'", "'unsafe-inline'")
    .form_action("'self'")
    .base_uri("'none'")
    .frame_ancestors("'none'")
)
DOCS = _secure(
    ContentSecurityPolicy()
    .default_src("'none'")
    .script_src("'unsafe-inline'", _CDN)
    .style_src("'unsafe-inline'", _CDN, "https://fonts.googleapis.com")
    .font_src("https://fonts.gstatic.com")
    .img_src("'self'", "data:", "https://fastapi.tiangolo.com", "https://cdn.redoc.ly")
    .connect_src("'self'")
    .worker_src("blob:")
    .base_uri("'none'")
    .frame_ancestors("'none'")
)


class SecurityHeaders:
    """The pages' policy on every response, the docs' policy on the API docs."""

    def __init__(self, app: ASGIApp) -> None:
        self.pages = SecureASGIMiddleware(app, secure=PAGES)
        self.docs = SecureASGIMiddleware(app, secure=DOCS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self.docs if scope.get("path") in DOCS_PATHS else self.pages
        await chosen(scope, receive, send)
