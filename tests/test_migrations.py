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


def test_0014_moves_release_text_into_release_at_and_back(tmp_path):
    """Held decisions stored with 'release=<ISO>;...' in detail keep their release time."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import text

    from outreach.db import alembic_config, as_utc, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0013")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO candidates (id, candidate_date, customer_id, offer_code, trigger, trigger_ref,"
                " score, source) VALUES (1, '2026-11-18', 'C1', 'KIDS_SAVINGS', 't', '', 1.0, 'file'),"
                " (2, '2026-11-18', 'C2', 'KIDS_SAVINGS', 't', '', 1.0, 'file')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO decisions (id, candidate_id, decision_date, customer_id, offer_code, outcome,"
                " reason, channel, detail, decided_at) VALUES"
                " (1, 1, '2026-11-18', 'C1', 'KIDS_SAVINGS', 'held', 'campaign_send_time', 'sms',"
                " 'release=2026-11-18T11:30:00+00:00;campaign=timed', '2026-11-18 06:00:00.000000'),"
                " (2, 2, '2026-11-18', 'C2', 'KIDS_SAVINGS', 'planned', 'planned', 'sms', NULL,"
                " '2026-11-18 06:00:00.000000')"
            )
        )
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, detail FROM decisions")).all())
        released = conn.execute(text("SELECT release_at FROM decisions WHERE id = 1")).scalar()
    engine.dispose()
    assert rows == {1: "campaign=timed", 2: None}
    assert as_utc(datetime.fromisoformat(str(released))) == datetime(2026, 11, 18, 11, 30, tzinfo=UTC)
    command.downgrade(alembic_config(url), "0013")
    engine = make_engine(url)
    with engine.connect() as conn:
        detail = conn.execute(text("SELECT detail FROM decisions WHERE id = 1")).scalar()
    engine.dispose()
    assert detail == "release=2026-11-18T11:30:00+00:00;campaign=timed"
