"""How the packed arrays sit in the database (migration 0007)."""

import pytest
from django.db import connection, models

from engine.models import AttentionRun

pytestmark = pytest.mark.django_db

# Every binary column: the packed arrays (a new one must be stored as they are, too).
COLUMNS = {
    field.column
    for field in AttentionRun._meta.concrete_fields
    if isinstance(field, models.BinaryField)
}


def test_packed_arrays_are_stored_as_they_are():
    """On PostgreSQL the zlib-packed arrays skip PostgreSQL's own compression (STORAGE
    EXTERNAL: 'e'); the JSON columns keep the default. SQLite has no such setting: there the
    columns are plain BLOBs."""
    table = AttentionRun._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT attname, attstorage FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [table],
            )
            storage = dict(cursor.fetchall())
            assert {column: storage[column] for column in COLUMNS} == dict.fromkeys(COLUMNS, "e")
            assert storage["tokens"] == "x"  # the rest as PostgreSQL chose
        else:
            description = connection.introspection.get_table_description(cursor, table)
            types = {column.name: column.type_code for column in description}
            assert {types[column].upper() for column in COLUMNS} == {"BLOB"}
