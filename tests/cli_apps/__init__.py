"""Small applications for the command-line tests (``tests/test_cli.py``)."""
