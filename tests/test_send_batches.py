"""The one dispatch driver (outreach.sending.send_batches) that the flows run with Prefect tasks
and send_due with threads: its passes are the only retry layer above the adapters, and they run
only while a pass gave messages back."""

from concurrent.futures import ThreadPoolExecutor

from channels.errors import OutcomeUnknown, TransientError
from channels.memory import MemoryEmail
from outreach.sending import send_batches
from tests.test_dispatch_outbox import DAY, NOON, make, setup_day, statuses


class FailsOnce(MemoryEmail):
    """Answers each scripted customer's first hand-off with its error, then accepts it."""

    def send_batch(self, messages):
        outcome = super().send_batch(messages)
        for m in messages:
            self.answers.pop(m.customer_id, None)
        return outcome


def drive(engine, dispatcher, run_batch, **options):
    return send_batches(engine, DAY, ["email"], run_batch, batch_size=2, at=lambda: NOON, **options)["email"]


def test_a_transient_failure_is_sent_again_in_the_next_pass_through_futures(engine, tmp_path):
    setup_day(engine, n=5)
    channel = FailsOnce({"C1": TransientError("503", code="503")})
    dispatcher = make(engine, tmp_path, channel)
    with ThreadPoolExecutor(2) as pool:  # futures, as Prefect's task runner hands back
        report = drive(engine, dispatcher, lambda channel, ids, n: pool.submit(dispatcher.send_ids, ids))
    assert (report.sent, report.requeued) == (5, 1)
    assert channel.calls.count("C1") == 2 and len(channel.outbox) == 5
    assert set(statuses(engine).values()) == {"sent"}


def test_no_second_pass_when_nothing_was_given_back(engine, tmp_path):
    setup_day(engine, n=3)
    channel = MemoryEmail({"C2": OutcomeUnknown("read timeout")})
    dispatcher = make(engine, tmp_path, channel)
    passes = []

    def before_pass():
        passes.append(1)
        return 0

    report = drive(
        engine, dispatcher, lambda channel, ids, n: dispatcher.send_ids(ids), before_pass=before_pass
    )
    # the unknown one is never resent blindly: a second pass finds nothing due, and stops there
    assert (report.sent, report.unknown) == (2, 1) and channel.calls.count("C2") == 1
    assert len(passes) == 2


def test_passes_are_bounded(engine, tmp_path):
    setup_day(engine, n=1)
    channel = MemoryEmail({"C0": TransientError("503", code="503")})  # fails every time
    dispatcher = make(engine, tmp_path, channel)
    report = drive(engine, dispatcher, lambda channel, ids, n: dispatcher.send_ids(ids), max_passes=10)
    # each claim counts: after MAX_ATTEMPTS (3) the ledger fails it instead of requeueing
    assert channel.calls.count("C0") == 3 and (report.requeued, report.failed) == (2, 1)
    assert statuses(engine) == {"C0": "failed"}


def test_the_prefect_batch_task_retries_only_a_lost_database_connection():
    from sqlalchemy.exc import OperationalError

    from flows.daily import database_dropped, dispatch_batch

    class Failed:
        def __init__(self, error):
            self.error = error

        def result(self):
            raise self.error

    assert dispatch_batch.retries == 2 and dispatch_batch.retry_condition_fn is database_dropped
    assert database_dropped(None, None, Failed(OperationalError("select 1", {}, Exception("gone"))))
    assert not database_dropped(None, None, Failed(TransientError("503")))
    assert not database_dropped(None, None, Failed(KeyError("bug")))
