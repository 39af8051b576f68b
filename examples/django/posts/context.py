"""A context processor: the actions and the visitor's preferences in every template."""

from . import actions


def site(request):
    return {
        "actions": actions,
        "name": request.COOKIES.get("name", ""),
        "theme": request.COOKIES.get("theme", "light"),
    }
