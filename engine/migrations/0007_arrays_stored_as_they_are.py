"""The packed arrays are stored as they are on PostgreSQL (``STORAGE EXTERNAL``): out of line,
without PostgreSQL's own compression. They are float16 already compressed with zlib (or, for
q/k/v, bytes that zlib shrinks by only 7 %), so pglz gained nothing and cost about 3 ms of a
run's 10 ms write (the UPDATE of a T = 20 run: 9.7 ms before, 6.5 ms after, on this kind of
machine). Other databases have no such setting: nothing to do there."""

from django.db import migrations

COLUMNS = (
    "weights",
    "scores",
    "qkv",
    "compare_weights",
    "generated_attention",
    "value_norms",
    "compare_value_norms",
)


def _alter(storage: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name("engine_attentionrun")
        columns = ", ".join(
            f"ALTER COLUMN {schema_editor.quote_name(column)} SET STORAGE {storage}"
            for column in COLUMNS
        )
        schema_editor.execute(f"ALTER TABLE {table} {columns}")

    return run


class Migration(migrations.Migration):
    dependencies = [("engine", "0006_batching")]

    operations = [migrations.RunPython(_alter("EXTERNAL"), _alter("EXTENDED"))]
