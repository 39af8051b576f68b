from django.db import migrations, models


def seed(apps, schema_editor):
    Post = apps.get_model("posts", "Post")
    Post.objects.create(
        title="Hello, actionkit",
        content="Forms that call Python functions, with or without JavaScript.",
    )
    Post.objects.create(
        title="Revalidation",
        content="An action says which pages changed; every worker shows the change at once.",
    )


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Post",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("title", models.CharField(max_length=120)),
                ("content", models.TextField(blank=True, default="")),
                ("author", models.CharField(default="anonymous", max_length=150)),
                ("likes", models.PositiveIntegerField(default=0)),
                ("views", models.PositiveIntegerField(default=0)),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["-id"]},
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
