"""The command line: ``python -m actionkit actions|check APP`` and ``flask actionkit ...``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

import pydantic
import pytest
from annotated_types import Ge
from werkzeug.datastructures import MultiDict

from actionkit import ActionMiddleware, Bound
from actionkit.cli import (
    AppLoadError,
    check,
    describe,
    find_middleware,
    load_app,
    main,
    worker_count,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLASK_APP = "tests.cli_apps.flask_app:app"
FACTORY_APP = "tests.cli_apps.factory_app:create_app()"
BROKEN_APP = "tests.cli_apps.broken_app"


def run(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """``python -m actionkit ARGS`` from the repository root, with ``env`` changes applied."""
    environ = dict(os.environ)
    for name in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "ACTIONKIT_SECRET_KEY"):
        environ.pop(name, None)
    environ.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run(
        [sys.executable, "-m", "actionkit", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def codes(problems: t.Iterable[t.Any]) -> set[str]:
    return {p.code for p in problems}


def test_actions_lists_every_action_as_a_table() -> None:
    """``actions`` prints one row per action: ID, module, function, bound parameters and the
    parameters with their annotations."""
    result = run("actions", FLASK_APP, ACTIONKIT_SECRET_KEY="k" * 32)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "MODULE", "FUNCTION", "BOUND", "PARAMETERS"]
    assert len(lines) == 4
    like = next(line for line in lines if line.startswith("increment-like"))
    assert "tests.cli_apps.flask_app" in like
    assert "(post_id: int, amount: int = 1)" in like
    delete = next(line for line in lines if "delete_post" in line)
    assert delete.split()[3] == "post_id"
    assert "(post_id: int, form: MultiDict[str, str] | None = None)" in delete


def test_actions_json() -> None:
    """``actions --json`` gives each action's ID, module, function and parameters, and which
    parameters bind() fills."""
    result = run("actions", FLASK_APP, "--json", ACTIONKIT_SECRET_KEY="k" * 32)
    assert result.returncode == 0, result.stderr
    described = {d["function"]: d for d in json.loads(result.stdout)}
    assert set(described) == {"create_post", "delete_post", "increment_like"}
    like = described["increment_like"]
    assert like["id"] == "increment-like"
    assert like["module"] == "tests.cli_apps.flask_app"
    assert like["takes_bound_arguments"] is False
    assert like["parameters"] == [
        {
            "name": "post_id",
            "kind": "positional_or_keyword",
            "annotation": "int",
            "default": None,
            "bound": False,
        },
        {
            "name": "amount",
            "kind": "positional_or_keyword",
            "annotation": "int",
            "default": "1",
            "bound": False,
        },
    ]
    assert described["delete_post"]["takes_bound_arguments"] is True
    assert [p["bound"] for p in described["delete_post"]["parameters"]] == [True, False]
    assert described["create_post"]["takes_bound_arguments"] is False


def test_factory_call_and_nested_middleware() -> None:
    """``module:create_app()`` is called as gunicorn calls it, and the middleware is found
    below another middleware's ``app`` attribute."""
    result = run("actions", FACTORY_APP)
    assert result.returncode == 0, result.stderr
    assert "subscribe" in result.stdout
    assert "(form: t.Any)" in result.stdout


def test_check_passes_a_good_configuration() -> None:
    """``check`` exits 0 and says so when it finds nothing wrong."""
    result = run("check", FLASK_APP, ACTIONKIT_SECRET_KEY="k" * 32)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"No problems found in {FLASK_APP} (3 action(s))."


def test_check_reports_a_missing_secret_key() -> None:
    """Without a secret key ``check`` exits 1 and says how to set one."""
    result = run("check", FLASK_APP)
    assert result.returncode == 1
    assert "[secret_key]" in result.stdout
    assert "ACTIONKIT_SECRET_KEY" in result.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param(["--workers", "3"], {}, id="option"),
        pytest.param([], {"WEB_CONCURRENCY": "3"}, id="WEB_CONCURRENCY"),
        pytest.param([], {"GUNICORN_CMD_ARGS": "--bind :8000 -w 3"}, id="GUNICORN_CMD_ARGS"),
    ],
)
def test_check_reports_a_memory_store_with_several_workers(
    args: list[str], env: dict[str, str]
) -> None:
    """A MemoryStore page cache with more than one worker is a problem, whether the worker
    count comes from ``--workers`` or from the environment gunicorn reads."""
    result = run("check", FLASK_APP, *args, ACTIONKIT_SECRET_KEY="k" * 32, **env)
    assert result.returncode == 1
    assert "[memory_store]" in result.stdout
    assert "3 worker processes" in result.stdout
    assert "SQLiteStore" in result.stdout


def test_check_reports_wrapped_and_shadowed_actions() -> None:
    """A decorator above ``@action`` and a name rebound after registration are reported,
    with every other problem of the app, as JSON too."""
    result = run("check", BROKEN_APP, "--json", "--workers", "2")
    assert result.returncode == 1
    found = {p["code"]: p for p in json.loads(result.stdout)}
    assert set(found) == {"secret_key", "memory_store", "wrapped_action", "not_the_action"}
    assert "tests.cli_apps.broken_app.delete_everything" in found["wrapped_action"]["message"]
    assert "put @action on top" in found["wrapped_action"]["message"]
    assert "tests.cli_apps.broken_app.shadowed" in found["not_the_action"]["message"]
    # Each framework's place for the key is named (a Django project was sent to app.secret_key).
    assert "app.secret_key" in found["secret_key"]["message"]
    assert "ACTIONKIT['SECRET_KEY']" in found["secret_key"]["message"]


def test_check_reports_duplicate_ids() -> None:
    """Two functions claiming one ID fail the import; ``check`` reports it as a problem."""
    result = run("check", "tests.cli_apps.duplicate_app")
    assert result.returncode == 1
    assert "[duplicate_id]" in result.stdout
    assert "'save'" in result.stdout
    listing = run("actions", "tests.cli_apps.duplicate_app")
    assert listing.returncode == 2
    assert "'save'" in listing.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("tests.cli_apps.plain_app", "No ActionMiddleware found", id="no-middleware"),
        pytest.param("tests.cli_apps.nowhere:app", "No module named", id="no-module"),
        pytest.param("tests.cli_apps.flask_app:nothing", "no attribute 'nothing'", id="no-name"),
        pytest.param("tests.cli_apps.flask_app:app[0]", "Cannot read", id="bad-expression"),
        pytest.param(":app", "names no module", id="no-module-name"),
        pytest.param(
            "tests.cli_apps.needs_dependency_app:app",
            "Importing 'tests.cli_apps.needs_dependency_app' (from"
            " 'tests.cli_apps.needs_dependency_app:app') failed: ModuleNotFoundError: No module"
            " named 'actionkit_tests_missing_dependency'",
            id="missing-dependency",
        ),
        pytest.param(
            "tests.cli_apps.factory_app:create_app_without_settings()",
            "failed: KeyError: 'DATABASE_URL'",
            id="factory-fails",
        ),
    ],
)
def test_unloadable_app(spec: str, message: str) -> None:
    """An app that cannot be loaded, or has no middleware, exits 2 with one line saying why."""
    result = run("actions", spec)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_usage() -> None:
    """Without a command, the usage is printed and the exit status is 2."""
    result = run()
    assert result.returncode == 2
    assert "usage: python -m actionkit" in result.stderr


# -- in process ----------------------------------------------------------------------------------


def test_load_app_forms() -> None:
    """``load_app`` takes a name, a dotted attribute, a factory call with literal arguments,
    and a bare module meaning ``module:application``."""
    from tests.cli_apps import broken_app, factory_app, flask_app

    assert load_app(FLASK_APP) is flask_app.app
    assert load_app("tests.cli_apps.flask_app:app.wsgi_app") is flask_app.app.wsgi_app
    assert load_app(BROKEN_APP) is broken_app.application
    made = load_app("tests.cli_apps.factory_app:create_app(debug=True)")
    assert isinstance(made, factory_app.Logging)
    assert t.cast(ActionMiddleware, made.app).debug is True
    with pytest.raises(AppLoadError, match="must be literals"):
        load_app("tests.cli_apps.factory_app:create_app(print)")


def test_find_middleware() -> None:
    """The middleware is the Flask extension's, or found down ``wsgi_app``/``app``."""
    from tests.cli_apps import flask_app

    middleware = flask_app.app.extensions["actionkit"]
    assert find_middleware(flask_app.app) is middleware
    assert find_middleware(middleware) is middleware
    nested = load_app(FACTORY_APP)
    assert find_middleware(nested) is t.cast(t.Any, nested).app
    with pytest.raises(AppLoadError, match="ActionKit"):
        find_middleware(object())


def test_check_in_process() -> None:
    """``check`` returns its findings; a debug middleware is a warning, not an error."""
    from tests.cli_apps import flask_app

    middleware = find_middleware(flask_app.app)
    assert check(middleware, workers=1) == []
    assert codes(check(middleware, workers=2)) == {"memory_store"}
    debug = find_middleware(load_app("tests.cli_apps.factory_app:create_app(debug=True)"))
    assert [(p.code, p.level) for p in check(debug, workers=4)] == [("debug", "warning")]


def test_registered_twice_is_a_warning() -> None:
    """One function under two IDs is reported as a warning."""
    from actionkit import Registry

    registry = Registry()

    def save(form: t.Any) -> None: ...

    registry.register(save)
    registry.register(save, id="save-v1")
    middleware = ActionMiddleware(lambda e, s: [], registry=registry, cache=False)
    found = check(middleware, workers=1)
    assert [(p.code, p.level) for p in found] == [("registered_twice", "warning")]


def test_an_action_stacked_under_an_older_id_is_only_a_warning() -> None:
    """``@action(id="save-v1")`` stacked on ``@action``: the module attribute is an Action of
    the registered function, not something else exposed in its place."""
    middleware = find_middleware(load_app("tests.cli_apps.legacy_ids_app:app"))
    found = check(middleware, workers=1)
    assert [(p.code, p.level) for p in found] == [("registered_twice", "warning")]


def test_worker_count() -> None:
    """The option wins over ``GUNICORN_CMD_ARGS``, which wins over ``WEB_CONCURRENCY``."""
    env = {"WEB_CONCURRENCY": "4", "GUNICORN_CMD_ARGS": "--workers=2"}
    assert worker_count(8, env) == 8
    assert worker_count(None, env) == 2
    assert worker_count(None, {"WEB_CONCURRENCY": "4"}) == 4
    assert worker_count(None, {"WEB_CONCURRENCY": "many"}) == 1
    assert worker_count(None, {}) == 1
    for args in ("-w4", "-w 4", "--workers 4", "--bind :80 -w4 -k gthread"):
        assert worker_count(None, {"GUNICORN_CMD_ARGS": args}) == 4, args  # as gunicorn reads it


def test_describe_variadic_parameters() -> None:
    """Parameters without annotations, ``*args`` and ``**kwargs`` are described too."""
    from actionkit import Registry

    def anything(a, *args, key=None, **kwargs):  # type: ignore[no-untyped-def]
        return None

    described = describe(Registry().register(anything))
    assert [(p["name"], p["kind"]) for p in described["parameters"]] == [
        ("a", "positional_or_keyword"),
        ("args", "var_positional"),
        ("key", "keyword_only"),
        ("kwargs", "var_keyword"),
    ]


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """``main`` returns the exit status and prints what the subprocess would."""
    assert main(["actions", FLASK_APP]) == 0
    assert "increment-like" in capsys.readouterr().out
    assert main(["check", FLASK_APP, "--workers", "2"]) == 1
    assert "[memory_store]" in capsys.readouterr().out


def test_flask_command_group() -> None:
    """``flask actionkit actions`` and ``flask actionkit check`` work on the current app."""
    from actionkit.cli import flask_cli
    from tests.cli_apps import flask_app

    runner = flask_app.app.test_cli_runner()
    result = runner.invoke(flask_cli, ["actions", "--json"])
    assert result.exit_code == 0, result.output
    assert {d["id"] for d in json.loads(result.output)} >= {"increment-like"}
    result = runner.invoke(flask_cli, ["check"])
    assert result.exit_code == 0, result.output
    assert "No problems found" in result.output
    result = runner.invoke(flask_cli, ["check", "--workers", "2"])
    assert result.exit_code == 1
    assert "[memory_store]" in result.output


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        pytest.param(["actions", "tests.cli_apps.plain_app"], 2, "No ActionMiddleware", id="none"),
        pytest.param(["actions", "tests.cli_apps.nowhere"], 2, "No module named", id="module"),
        pytest.param(["actions", "tests.cli_apps.flask_app:x.y"], 2, "no attribute", id="name"),
        pytest.param(["actions", "tests.cli_apps.flask_app:1 +"], 2, "Cannot read", id="syntax"),
        pytest.param(["actions", "tests.cli_apps.duplicate_app"], 2, "'save'", id="duplicate"),
        pytest.param(["check", "tests.cli_apps.duplicate_app"], 1, "[duplicate_id]", id="check"),
        pytest.param(
            ["check", "tests.cli_apps.exiting_app"], 2, "SystemExit: DATABASE_URL", id="exit"
        ),
    ],
)
def test_main_errors_in_process(
    argv: list[str], status: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unloadable apps exit 2 with one line on stderr; a duplicate ID is a problem for
    ``check``."""
    assert main(argv) == status
    captured = capsys.readouterr()
    assert message in captured.out + captured.err


def test_a_django_project_is_sent_to_its_management_commands(tmp_path: t.Any) -> None:
    """``actions mysite.wsgi`` (the spec gunicorn takes) of a Django project exits 2 saying
    which commands list and check its actions, not to wrap it in ActionMiddleware."""
    example = os.path.join(ROOT, "examples", "django")
    env = {**os.environ, "EXAMPLE_DATABASE": str(tmp_path / "db"), "EXAMPLE_CACHE": "memory"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "actionkit", "actions", "mysite.wsgi"],
        cwd=example,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "is a Django project: run `manage.py actionkit_actions`" in result.stderr


def test_load_app_refuses_non_callables() -> None:
    """Calling something that is not callable, or a factory returning ``None``, is an error
    that names the expression."""
    with pytest.raises(AppLoadError, match="not callable"):
        load_app("tests.cli_apps.flask_app:FLASK_NAME()")
    with pytest.raises(AppLoadError, match="is None"):
        load_app("tests.cli_apps.factory_app:nothing")


def test_actions_text_without_actions() -> None:
    """An empty registry is said in words, and ``check`` warns about it."""
    from actionkit import Registry
    from actionkit.cli import actions_text

    middleware = ActionMiddleware(lambda e, s: [], registry=Registry(), cache=False)
    assert actions_text(middleware) == "No actions are registered."
    assert actions_text(middleware, as_json=True) == "[]"
    assert [p.code for p in check(middleware, workers=1)] == ["no_actions"]


_MARKER = object()


class _Bound:
    """Stands for ``actionkit.Bound`` (an ``Annotated`` alias) in versions without it."""

    def __class_getitem__(cls, item: t.Any) -> t.Any:
        return t.Annotated[item, _MARKER]


def _like(post_id: t.Annotated[int, _MARKER], amount: int) -> int:
    return post_id + amount


def test_bound_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where ``actionkit.Bound`` exists, parameters annotated with it are bound ones."""
    import actionkit
    from actionkit import Registry

    monkeypatch.setattr(actionkit, "Bound", _Bound, raising=False)
    described = describe(Registry().register(_like))
    assert [p["bound"] for p in described["parameters"]] == [True, False]
    assert described["takes_bound_arguments"] is True


def test_check_broken_app_in_process() -> None:
    """A decorator above ``@action`` and a rebound name are found in process too."""
    found = check(find_middleware(load_app(BROKEN_APP)), workers=1)
    assert codes(found) == {"wrapped_action", "not_the_action"}


class _Note(pydantic.BaseModel):
    title: str


def _with_request(request: t.Any, form: t.Any) -> None: ...


def _raw_form_by_annotation(post_id: int, data: MultiDict[str, str]) -> None: ...


def _model_named_form(post_id: int, form: _Note) -> None: ...


def test_bound_in_front_of_the_raw_form() -> None:
    """The parameters in front of the one taking the raw form are bound ones, as the action's
    compiled signature sees them: not the framework's ``request``, the form's parameter found
    by its ``MultiDict`` annotation, and a model named ``form`` is no raw form (``post_id`` may
    come from the form's field of that name)."""
    from actionkit import Registry

    registry = Registry()
    cases = {
        _with_request: [False, False],
        _raw_form_by_annotation: [True, False],
        _model_named_form: [False, False],
    }
    for fn, expected in cases.items():
        described = describe(registry.register(fn))
        assert [p["bound"] for p in described["parameters"]] == expected, fn.__name__
        assert described["takes_bound_arguments"] is any(expected), fn.__name__


class _PlainTypedDict(t.TypedDict):  # pydantic needs typing_extensions' before Python 3.12
    q: str


def _search(data: _PlainTypedDict) -> None: ...


def _later(data: SomethingOnlyACheckerSees) -> None:  # type: ignore[name-defined]  # noqa: F821
    ...


def _fine(post_id: int, form: t.Any) -> None: ...


def test_check_compiles_each_action_signature() -> None:
    """An action whose parameters cannot be validated would answer its first request with a
    500; check reports it, naming the function and the cause."""
    from actionkit import Registry

    registry = Registry()
    for fn in (_search, _later, _fine):
        registry.register(fn)
    middleware = ActionMiddleware(lambda e, s: [], registry=registry, secret_key="k" * 32)
    found = [p for p in check(middleware, workers=1) if p.code == "signature"]
    messages = sorted(p.message for p in found)
    assert all(p.level == "error" for p in found)
    assert "tests.test_cli._later" in messages[0] and "cannot be resolved" in messages[0]
    if sys.version_info < (3, 12):
        assert "tests.test_cli._search" in messages[1] and "TypedDict" in messages[1]
    assert len(messages) == (2 if sys.version_info < (3, 12) else 1)


def _sealed(post_id: Bound[int], page: Bound[t.Annotated[int, Ge(0)]], n: int) -> None: ...


def test_bound_annotations_are_shown_as_written() -> None:
    """Without postponed annotations, a Bound parameter is shown as Bound[int], not as the
    Annotated alias it stands for."""
    from actionkit import Registry

    # (this module postpones its annotations: give the function its evaluated ones)
    _sealed.__annotations__ = {
        "post_id": Bound[int],
        "page": Bound[t.Annotated[int, Ge(0)]],
        "n": int,
    }
    described = describe(Registry().register(_sealed))
    assert [p["annotation"] for p in described["parameters"]] == [
        "Bound[int]",
        "Bound[typing.Annotated[int, Ge(ge=0)]]",
        "int",
    ]
    assert [p["bound"] for p in described["parameters"]] == [True, True, False]


def _renamed(title, post_id):  # type: ignore[no-untyped-def]
    """An unmarked parameter in front of a Bound one."""


def test_a_parameter_in_front_of_a_bound_one_is_shown_bound() -> None:
    """bind() fills every parameter up to the last Bound one, in order: an unmarked one in
    front of it is bound too, and shown so (only the Bound one was)."""
    from actionkit import Registry

    _renamed.__annotations__ = {"title": str, "post_id": Bound[int]}
    described = describe(Registry().register(_renamed))
    assert [p["bound"] for p in described["parameters"]] == [True, True]


def test_the_parameters_column_writes_the_signatures_markers() -> None:
    """PARAMETERS writes a signature's / and * markers (a keyword-only parameter looked
    positional)."""
    from actionkit import Registry
    from actionkit.cli import actions_table

    def marked(post_id, /, title, *, note=""):  # type: ignore[no-untyped-def]
        """Positional-only, either, keyword-only."""

    def starred(*tags, flag=False):  # type: ignore[no-untyped-def]
        """*args stands for the marker."""

    registry = Registry()
    table = actions_table([describe(registry.register(fn)) for fn in (marked, starred)])
    assert "(post_id, /, title, *, note='')" in table
    assert "(*tags, flag=False)" in table


def test_actions_into_a_closed_pipe_says_nothing(tmp_path: t.Any) -> None:
    """``actions --json | head``: the reader gone, the command ends quietly (it printed a
    BrokenPipeError traceback)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "actionkit", "actions", FLASK_APP, "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the command has loaded the app and written a byte
    errors = process.stderr.read().decode()
    assert process.wait(60) == 0 and "Traceback" not in errors, errors
    process.stderr.close()


def test_check_into_a_closed_pipe_says_nothing() -> None:
    """``check | head``: the reader gone, no traceback; the exit status still tells what was
    found (the problems of the app: 1)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "actionkit", "check", BROKEN_APP, "--workers", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(60) == 1 and "Traceback" not in errors, errors
    process.stderr.close()


def test_check_reports_a_store_that_cannot_be_reached(tmp_path: t.Any) -> None:
    """A page cache whose store cannot be reached (an SQLite file where no folder can be made,
    a Redis port nobody listens on) is a problem: the workers would serve everything uncached
    while check said nothing. A store that answers is none."""
    import socket

    from actionkit import Registry
    from actionkit.stores import RedisStore, SQLiteStore

    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # closed again below: nobody listens there
    registry = Registry()
    registry.register(lambda: None, id="noop")
    for store, reached in (
        (SQLiteStore(blocker / "cache.sqlite3"), False),
        (RedisStore(f"redis://127.0.0.1:{port}/0"), False),
        (SQLiteStore(tmp_path / "cache.sqlite3"), True),
    ):
        middleware = ActionMiddleware(lambda e, s: [], registry=registry, cache=store)
        codes = [p.code for p in check(middleware, workers=2)]
        assert ("store" not in codes) is reached, (store, codes)
        store.close()
