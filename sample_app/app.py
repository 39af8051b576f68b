"""The sample application: a small "posts" site running every example of the reference page.

Run it with ``make run`` (gunicorn, two workers, http://127.0.0.1:8000).

The environment chooses where the page cache is kept:

``ACTIONKIT_CACHE``
    ``memory`` (each worker its own), a ``redis://`` URL (every worker of every host sharing
    one Redis server: ``ACTIONKIT_CACHE=redis://127.0.0.1:6379/0 make run``), or the path of an
    SQLite file, relative to the instance folder; ``cache.sqlite3`` when unset.
"""

from __future__ import annotations

import logging
import os
import secrets
import typing as t

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    make_response,
    redirect,
    render_template,
    request,
)

from actionkit import Bound, action, after, cache_tag, revalidate_path, revalidate_tag
from actionkit.flask import ActionKit

from . import actions, db

log = logging.getLogger("sample_app.access")
DEFAULT_INSTANCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "instance")
# The page cache's store when ACTIONKIT_CACHE is not set (see the module).
DEFAULT_CACHE = "cache.sqlite3"


def instance_path() -> str:
    return os.environ.get("SAMPLE_APP_INSTANCE", DEFAULT_INSTANCE)


def prepare(path: str) -> str:
    """Create the instance folder, the database and a shared secret key; returns the key.

    Called by gunicorn before it starts the workers, and by each worker (harmless then).
    """
    os.makedirs(path, exist_ok=True)
    db.init(os.path.join(path, "posts.sqlite3"))
    key = os.environ.get("ACTIONKIT_SECRET_KEY") or os.environ.get("SECRET_KEY")
    if key:
        return key
    key_file = os.path.join(path, "secret_key")
    try:
        # O_EXCL: when two workers race, one writes the key and both read the same one.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    with open(key_file) as f:
        return f.read().strip()


@action
def rename_post(post_id: Bound[int], title: actions.Title) -> str:
    """An action defined next to the page that uses it, with the post's ID bound in."""
    db.get().execute("UPDATE posts SET title = ? WHERE id = ?", (title, post_id))
    revalidate_tag(f"post:{post_id}")
    revalidate_path("/posts")
    return title


@action(under="/admin/")
def reset_likes() -> None:
    """Set every post's likes back to zero: shown only on /admin/, and scoped to it, so the
    admin blueprint's guard runs before it wherever the browser posts it."""
    db.get().execute("UPDATE posts SET likes = 0")
    revalidate_path("/posts", type="layout")


def only_the_admin() -> None:
    """The admin blueprint's guard."""
    # A stand-in for a real login check: whoever saved the name "admin" is the admin.
    if request.cookies.get("name") != "admin":
        abort(403)


def create_app(instance: str | None = None) -> Flask:
    path = instance or instance_path()
    app = Flask(__name__, instance_path=path)
    app.secret_key = prepare(path)
    app.config["DATABASE"] = os.path.join(path, "posts.sqlite3")
    # The extension reads "memory", a redis:// URL or an SQLite path from ACTIONKIT_CACHE.
    app.config["ACTIONKIT_CACHE"] = os.environ.get("ACTIONKIT_CACHE") or DEFAULT_CACHE
    ActionKit(app)
    app.teardown_appcontext(db.close)
    app.jinja_env.globals.update(actions=actions, rename_post=rename_post)

    @app.before_request
    def access_log() -> None:
        # Logged after the answer has been sent, so the visitor never waits for it.
        method, path = request.method, request.full_path.rstrip("?")
        after(lambda: log.info("%s %s", method, path))

    def page(template: str, **values: t.Any) -> Response:
        response = make_response(
            render_template(
                template,
                name=request.cookies.get("name", ""),
                theme=request.cookies.get("theme", "light"),
                **values,
            )
        )
        response.vary.add("Cookie")  # the greeting and the theme come from cookies
        return response

    @app.get("/")
    def index() -> t.Any:
        return redirect("/posts")

    @app.get("/posts")
    def posts() -> Response:
        cache_tag("posts")
        rows = db.get().execute("SELECT * FROM posts ORDER BY id DESC").fetchall()
        return page("posts.html", posts=rows)

    @app.get("/posts/<int:post_id>")
    def post(post_id: int) -> Response:
        cache_tag("posts", f"post:{post_id}")
        row = db.get().execute("SELECT * FROM posts WHERE id = ?", (post_id,)).fetchone()
        if row is None:
            abort(404)
        return page("post.html", post=row)

    admin = Blueprint("admin", __name__, url_prefix="/admin")
    admin.before_request(only_the_admin)

    @admin.get("/")
    def admin_home() -> Response:
        rows = db.get().execute("SELECT * FROM posts ORDER BY id DESC").fetchall()
        return page("admin.html", posts=rows, reset_likes=reset_likes)

    app.register_blueprint(admin)

    @app.errorhandler(404)
    def not_found(error: t.Any) -> tuple[str, int]:
        return render_template("404.html", name="", theme="light"), 404

    @app.errorhandler(403)
    def forbidden(error: t.Any) -> tuple[str, int]:
        message = "Only the admin may do that: save your name as admin in the preferences."
        return render_template("404.html", name="", theme="light", message=message), 403

    return app


app = create_app()
