from django.db import migrations, models
from django.db.models import Count
from django.utils import timezone

UNFINISHED = ["queued", "running"]


def fail_duplicates(apps, schema_editor):
    """Before the constraint: of several unfinished runs of one input (made before it existed),
    keep the oldest and fail the others, as a run that waited too long would be."""
    run_model = apps.get_model("engine", "AttentionRun")
    unfinished = run_model.objects.filter(status__in=UNFINISHED)
    keys = (unfinished.values("input_key").annotate(n=Count("id")).filter(n__gt=1)).values_list(
        "input_key", flat=True
    )
    for key in list(keys):
        runs = list(unfinished.filter(input_key=key).order_by("created_at"))
        run_model.objects.filter(id__in=[run.id for run in runs[1:]]).update(
            status="failed", error="unavailable", finished_at=timezone.now()
        )


class Migration(migrations.Migration):
    dependencies = [
        ("engine", "0002_gpt_runs"),
    ]

    operations = [
        migrations.RunPython(fail_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="attentionrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", UNFINISHED)),
                fields=("input_key",),
                name="run_one_unfinished_per_input",
            ),
        ),
    ]
