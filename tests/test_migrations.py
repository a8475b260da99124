from sqlalchemy import inspect

from outreach.db import make_engine
from outreach.schema import metadata


def test_migrations_create_every_model_table(db_url):
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert set(metadata.tables) <= tables
    assert "alembic_version" in tables


def test_schema_gathers_every_area():
    """One aggregator registers the call-centre and campaign tables beside the core's."""
    assert {"messages", "decisions", "call_tasks", "campaign_assignments"} <= set(metadata.tables)


def test_migrations_match_models(db_url):
    """Autogenerate against the migrated database finds nothing to add: models and migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert [d for d in diff if d[0] in ("add_table", "add_column", "remove_table")] == []
