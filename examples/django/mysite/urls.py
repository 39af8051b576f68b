from django.urls import path
from django.views.generic.base import RedirectView
from posts import views

urlpatterns = [
    path("", RedirectView.as_view(url="/posts")),
    path("posts", views.post_list, name="posts"),
    path("posts/<int:post_id>", views.post_detail, name="post"),
    path("feedback", views.feedback, name="feedback"),
]
