"""gunicorn settings for the sample app: `make run` serves it on http://127.0.0.1:8000."""

import os

bind = os.environ.get("SAMPLE_APP_BIND", "127.0.0.1:8000")
# Two worker processes share the SQLite database and the SQLiteStore page cache.
workers = int(os.environ.get("SAMPLE_APP_WORKERS", "2"))
worker_class = "gthread"
threads = 4
accesslog = "-"
loglevel = "info"


def on_starting(server):
    # Create the instance folder, database and secret key once, before the workers fork.
    from sample_app.app import instance_path, prepare

    prepare(instance_path())
