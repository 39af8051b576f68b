from django.db import models


class Post(models.Model):
    title = models.CharField(max_length=120)
    content = models.TextField(blank=True, default="")
    author = models.CharField(max_length=150, default="anonymous")
    likes = models.PositiveIntegerField(default=0)
    views = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.title
