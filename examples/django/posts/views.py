from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.vary import vary_on_cookie

from actionkit import cache_tag

from .models import Post


@vary_on_cookie  # the greeting and the theme come from cookies
def post_list(request: HttpRequest) -> HttpResponse:
    cache_tag("posts")
    return render(request, "posts/posts.html", {"posts": Post.objects.all()})


@vary_on_cookie
def post_detail(request: HttpRequest, post_id: int) -> HttpResponse:
    cache_tag("posts", f"post:{post_id}")
    post = get_object_or_404(Post, pk=post_id)
    return render(request, "posts/post.html", {"post": post})


def feedback(request: HttpRequest) -> HttpResponse:
    """A plain Django form (no action): CsrfViewMiddleware guards it as ever."""
    sent = request.POST.get("message", "") if request.method == "POST" else ""
    return render(request, "posts/feedback.html", {"sent": sent})
