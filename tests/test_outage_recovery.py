"""The outage guard measured: the waits between probes (backoff grows, jitter bounded),
the probes counted (one schedule shared by every call in flight, one probe at a time),
the server's policy (no latch: it recovers by itself), stopping, and streamed text that
is never shown twice.

Not every test here guards against the same mutation (docs/reliability.md, "Mutation
checks", has the runs).  The wait set to 0 (a busy loop hammering the backend) fails the
schedule tests -- the waits between probes, the async and threaded probe counts, the
latched guard -- and the stub end to end; every call retrying on its own schedule fails
the probe counts.  The others catch other mutations: a latching server guard (the
recovery tests), a stopped request kept waiting (the stop tests), a streamed call
retried silently (the streaming tests).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Sequence

import pytest

from live_mind.models import aio
from live_mind.models.base import BackendUnavailable, ChatRequest, Completion, ModelError, OutageExceeded, StreamInterrupted
from live_mind.models.outage import JITTER, guard, outage_delay

FIRST, CAP = 0.04, 0.32


class Backend:
    """Away while ``down_until`` lies ahead; records when each call arrived and failed."""

    name = "flaky"

    def __init__(self, down_for: float = 0.0) -> None:
        self.down_until = time.monotonic() + down_for
        self.failed_at: list[float] = []
        self.calls = 0
        self.lock = threading.Lock()

    def answer(self, request: ChatRequest) -> Completion:
        with self.lock:
            self.calls += 1
            if time.monotonic() < self.down_until:
                self.failed_at.append(time.monotonic())
                raise BackendUnavailable("connection refused")
        return Completion(f"echo {request.messages[-1]['content']}", 1, 1, 0.0)

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return [self.answer(r) for r in requests]


class AsyncBackend(Backend):
    async def acomplete(self, request: ChatRequest) -> Completion:
        await asyncio.sleep(0.005)
        return self.answer(request)


def req(text: str = "q", **kwargs) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": text}], **kwargs)


def expected_probes(down_for: float) -> int:
    """Probes of the backoff schedule (no jitter) that fall inside an outage of ``down_for`` s."""
    at, attempt, probes = 0.0, 0, 0
    while at < down_for:
        at += outage_delay(attempt, FIRST, CAP, jitter=0)
        attempt, probes = attempt + 1, probes + 1
    return probes


def test_the_waits_between_probes_grow_and_their_jitter_stays_bounded():
    backend = Backend(down_for=1.6)
    model = guard(backend, max_outage=30, first_delay=FIRST, max_delay=CAP, rng=random.Random(3))
    assert model.complete([req()])[0].text == "echo q"
    gaps = [b - a for a, b in zip(backend.failed_at, backend.failed_at[1:])]
    assert len(gaps) >= 5
    for attempt, gap in enumerate(gaps):
        base = outage_delay(attempt, FIRST, CAP, jitter=0)
        assert base * (1 - JITTER) - 0.005 <= gap <= base * (1 + JITTER) + 0.05, (attempt, gap, gaps)
    assert gaps[3] > 2.5 * gaps[0], f"the backoff grows: {gaps}"
    assert max(gaps) <= CAP * (1 + JITTER) + 0.05, "and stops growing at its cap"


def test_calls_in_flight_on_an_async_backend_share_one_schedule_and_one_probe_at_a_time():
    """Eight calls in flight on a native ``acomplete`` backend: besides the failures of the
    calls already sent when it went away, the backend sees one probe per step of the
    schedule -- not one per call, not a busy loop."""
    down_for, calls = 1.0, 8
    backend = AsyncBackend(down_for=down_for)
    model = guard(backend, max_outage=30, first_delay=FIRST, max_delay=CAP, rng=random.Random(5))
    assert aio.native_async(model)

    async def main() -> list[Completion]:
        return await asyncio.gather(*(aio.acomplete(model, req(f"q{i}")) for i in range(calls)))

    completions = asyncio.run(main())
    assert [c.text for c in completions] == [f"echo q{i}" for i in range(calls)]
    probes = len(backend.failed_at) - calls  # the first failures are the calls already in flight
    assert 0 < probes <= expected_probes(down_for) + 2, (probes, expected_probes(down_for))
    assert model.outages == 1


def test_synchronous_callers_in_threads_share_one_schedule_too():
    down_for, callers = 0.8, 6
    backend = Backend(down_for=down_for)
    model = guard(backend, max_outage=30, first_delay=FIRST, max_delay=CAP)
    threads = [threading.Thread(target=model.complete, args=([req()],)) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(backend.failed_at) - callers <= expected_probes(down_for) + 2, len(backend.failed_at)


def test_the_servers_guard_does_not_latch_and_recovers_by_itself():
    backend = Backend(down_for=60)
    model = guard(backend, max_outage=0.3, first_delay=FIRST, max_delay=CAP, latch=False)
    assert model.health() is None
    with pytest.raises(OutageExceeded, match="longer than --max_outage 0.3"):
        model.complete([req()])
    assert "unavailable" in model.health()
    start = time.monotonic()
    with pytest.raises(OutageExceeded, match="still unavailable"):  # the next call probes once and fails at once
        model.complete([req()])
    assert time.monotonic() - start < 0.1
    backend.down_until = 0.0  # the backend is back: the next call is answered
    assert model.complete([req("again")])[0].text == "echo again"
    assert model.health() is None


def test_a_latched_guard_stays_stopped():
    backend = Backend(down_for=60)
    model = guard(backend, max_outage=0.2, first_delay=FIRST, max_delay=CAP)
    with pytest.raises(OutageExceeded):
        model.complete([req()])
    backend.down_until, calls = 0.0, backend.calls
    with pytest.raises(OutageExceeded):
        model.complete([req()])
    assert backend.calls == calls


def test_health_probes_a_backend_that_is_away_when_the_probe_is_due():
    backend = Backend(down_for=60)
    model = guard(backend, max_outage=0.2, first_delay=FIRST, max_delay=CAP, latch=False)
    with pytest.raises(OutageExceeded):
        model.complete([req()])
    backend.down_until = 0.0
    time.sleep(CAP * 1.5)
    assert model.probe() is None, "a due probe found the backend back, with no other call"


@pytest.mark.parametrize("native", [False, True], ids=["sync", "async"])
def test_a_stopped_request_leaves_the_retry_loop_at_once(native):
    backend = (AsyncBackend if native else Backend)(down_for=60)
    model = guard(backend, max_outage=30, first_delay=FIRST, max_delay=5.0)
    stop = threading.Event()
    threading.Timer(0.6, stop.set).start()
    start = time.monotonic()
    if native:
        completion = asyncio.run(model.acomplete(req(stop=stop)))
    else:
        [completion] = model.complete([req(stop=stop)])
    assert completion.finish_reason == "cancelled"
    assert 0.55 < time.monotonic() - start < 0.8


class Streaming(Backend):
    """Streams ``Answer text`` in pieces; the first call fails after two of them."""

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        [request] = requests
        self.calls += 1
        for i, piece in enumerate(["Answer", " text"]):
            if self.calls == 1 and i == 1:
                raise BackendUnavailable("connection reset mid-stream")
            request.on_token(piece)
        return [Completion("Answer text", 1, 2, 0.0)]


def test_a_call_that_streamed_text_says_it_restarts_before_it_is_retried():
    shown: list[str] = []
    model = guard(Streaming(), max_outage=10, first_delay=0.01, max_delay=0.02)
    request = req(on_token=shown.append, on_restart=lambda why: shown.append(f"<restart: {why}>"))
    assert model.complete([request])[0].text == "Answer text"
    assert shown == ["Answer", "<restart: connection reset mid-stream>", "Answer", " text"]


def test_a_call_that_streamed_text_is_not_retried_without_a_way_to_say_so():
    shown: list[str] = []
    backend = Streaming()
    model = guard(backend, max_outage=10, first_delay=0.01, max_delay=0.02)
    with pytest.raises(StreamInterrupted) as info:
        model.complete([req(on_token=shown.append)])
    assert isinstance(info.value, ModelError) and backend.calls == 1 and shown == ["Answer"]


def test_a_stub_server_killed_and_restarted_under_concurrency_one_schedule_end_to_end():
    """Six calls in flight on the OpenAI-compatible backend's native ``acomplete`` (the
    ``--concurrency`` path) when its server is SIGKILLed, restarted 1.2 s later: every
    call is answered, and the guard sent, besides the six, one probe per schedule step."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from conftest import require_module

    require_module("openai", "openai is not installed (pip install '.[openai]')")
    from test_faults import free_port

    from live_mind.models.openai_compat import OpenAIChatModel

    stub = Path(__file__).resolve().parent / "fixtures" / "stub_openai_server.py"
    port = free_port()

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, str(stub), str(port), "0.6"], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    server = start()
    backend = OpenAIChatModel(f"http://127.0.0.1:{port}/v1", "stub", max_retries=0, timeout=5.0)
    model = guard(backend, max_outage=30, first_delay=FIRST, max_delay=CAP)
    assert aio.native_async(model)
    down_for = 1.2

    async def main() -> list[Completion]:
        calls = [asyncio.create_task(aio.acomplete(model, req(f"q{i}"))) for i in range(6)]
        await asyncio.sleep(0.3)  # all six are waiting for the (slow) server
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        await asyncio.sleep(down_for)
        restarted.append(await asyncio.to_thread(start))
        return await asyncio.gather(*calls)

    restarted: list[subprocess.Popen] = []
    try:
        completions = asyncio.run(main())
    finally:
        for proc in [server, *restarted]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [c.text for c in completions] == ["Thinking done. The answer is (A)."] * 6
    failed_probes = model.probes - 12  # sent: the six that failed, the failed probes, the six answered
    assert model.outages == 1 and 1 <= failed_probes <= expected_probes(down_for + 0.5) + 1, (model.probes, expected_probes(down_for))


# --------------------------------------------------------------------------- on a clock the test moves


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Recording(AsyncBackend):
    """Records every request; away while ``away`` is set (with a long error message)."""

    def __init__(self) -> None:
        super().__init__()
        self.away, self.requests = False, []

    def answer(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        if self.away:
            raise BackendUnavailable("refused " + "x" * 400)
        return Completion("ok", 1, 1, 0.0)


def test_health_and_probes_say_exactly_what_happened_on_a_moved_clock():
    """The wording of ``/healthz`` (seconds down, the budget, the error cut at 300
    characters), when a probe is due (at the scheduled instant, not after it), what a probe
    sends (one short user message), and the status callback set after construction."""
    clock, backend, statuses = Clock(), Recording(), []
    model = guard(backend, max_outage=50, first_delay=2.0, max_delay=2.0, latch=False, idle_probe=5.0, clock=clock,
                  rng=random.Random(0))
    model.report_status(statuses.append)
    assert model.probe() is None and backend.requests == []  # up, called just now: nothing sent
    clock.now += 5.0  # idle exactly idle_probe seconds: a probe goes out
    assert model.probe() is None and len(backend.requests) == 1
    probe = backend.requests[0]
    assert (probe.messages, probe.max_new_tokens) == ([{"role": "user", "content": "ping"}], 1)
    backend.away = True
    clock.now += 5.0
    expected = "refused " + "x" * 292  # error_line(..., 300)
    assert model.probe() == f"backend flaky unavailable for 0 s (waiting up to 50 s): {expected}"
    down_at, next_probe = clock.now, model._next_probe
    assert statuses[-1] == f"waiting for backend flaky ({expected[:60]}); next try in {next_probe - down_at:.1f} s"
    clock.now = next_probe - 0.001
    model.probe()
    assert len(backend.requests) == 2, "no probe before it is due"
    clock.now = next_probe  # due at that very instant
    assert model.probe() == f"backend flaky unavailable for {next_probe - down_at:.0f} s (waiting up to 50 s): {expected}"
    assert len(backend.requests) == 3 and model._next_probe > clock.now  # that probe failed: the next one later
    clock.now = down_at + 60  # past the budget: the next failed probe spends it
    model.probe()
    spent = f"backend flaky unavailable for 60 s, longer than --max_outage 50: {expected}"
    assert model.health() == f"backend flaky unavailable: {spent[:300]}"  # that line, cut at 300 characters too
    backend.away = False
    clock.now += 10
    assert model.probe() is None and statuses[-1] is None


def test_a_guard_with_idle_probes_off_never_probes_a_backend_that_is_up():
    clock, backend = Clock(), Recording()
    model = guard(backend, idle_probe=0.0, clock=clock)
    clock.now += 1000
    assert model.probe() is None and backend.requests == []


def test_a_request_stopped_before_its_retry_gets_an_empty_cancelled_completion():
    backend = Backend(down_for=60)
    model = guard(backend, max_outage=30, first_delay=FIRST, max_delay=5.0)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    [completion] = model.complete([req(stop=stop)])
    assert (completion.text, completion.prompt_tokens, completion.completion_tokens, completion.seconds,
            completion.finish_reason) == ("", 0, 0, 0.0, "cancelled")


class FailsAgainBeforeText(Streaming):
    """Streams one piece and fails; then fails once more before any text; then answers.
    Its error text is longer than 300 characters."""

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        [request] = requests
        self.calls += 1
        if self.calls == 1:
            request.on_token("Answer")
        if self.calls <= 2:
            raise BackendUnavailable("reset " + "y" * 400)
        request.on_token("Answer text")
        return [Completion("Answer text", 1, 2, 0.0)]


def test_a_restart_is_announced_once_per_shown_text_with_the_error_cut_at_300_characters():
    shown: list[str] = []
    model = guard(FailsAgainBeforeText(), max_outage=10, first_delay=0.01, max_delay=0.02)
    request = req(on_token=shown.append, on_restart=lambda why: shown.append(f"<restart: {why}>"))
    assert model.complete([request])[0].text == "Answer text"
    assert shown == ["Answer", f"<restart: {('reset ' + 'y' * 400)[:300]}>", "Answer text"]  # not again: nothing new was shown
    with pytest.raises(StreamInterrupted) as info:
        guard(FailsAgainBeforeText(), max_outage=10, first_delay=0.01, max_delay=0.02).complete([req(on_token=shown.append)])
    assert str(info.value) == ("the backend failed after streaming part of the reply, which is not sent again: "
                               + ("reset " + "y" * 400)[:300])


@pytest.mark.parametrize("native", [False, True], ids=["sync", "async"])
def test_a_stopped_request_goes_out_to_a_backend_that_is_up_but_is_not_retried_once_another_call_ended_the_outage(native):
    """A backend that is up handles a stopped request itself, so its first try goes out;
    after a failure it is not retried, even when another call has ended the outage
    meanwhile (simulated: the status callback, called when the failure is recorded,
    reports another call's success)."""
    def call(model, request):
        return asyncio.run(model.acomplete(request)) if native else model.complete([request])[0]

    stop = threading.Event()
    stop.set()
    backend = (AsyncBackend if native else Backend)()
    assert call(guard(backend), req(stop=stop)).text == "echo q" and backend.calls == 1
    backend = (AsyncBackend if native else Backend)(down_for=1.0)  # retried by mistake: answered after 1 s
    model = guard(backend, max_outage=30, first_delay=FIRST, max_delay=CAP)
    model.report_status(lambda text: model._succeeded() if text else None)
    stop = threading.Event()
    backend.answer = (lambda answer: lambda request: (stop.set(), answer(request))[1])(backend.answer)  # stopped as it fails
    assert call(model, req(stop=stop)).finish_reason == "cancelled" and backend.calls == 1


def test_a_failing_status_callback_is_logged_and_the_call_goes_on(caplog):
    def broken(text):
        raise RuntimeError("display gone")

    model = guard(Backend(down_for=0.05), max_outage=10, first_delay=0.02, max_delay=0.04, on_status=broken)
    with caplog.at_level("DEBUG", logger="live_mind.models.outage"):
        assert model.complete([req()])[0].text == "echo q"
    failed = [r for r in caplog.records if r.getMessage() == "status callback failed"]
    assert failed and failed[0].exc_info and failed[0].exc_info[0] is RuntimeError and failed[0].levelname == "DEBUG"


def test_past_the_budget_a_servers_guard_backs_off_between_failed_probes_and_says_so():
    """Not latched (the server): once the budget is spent, each due probe that fails says
    the backend is still away and schedules the next one further off, on the outage's own
    backoff (the same jitter draws: a copy of the guard's random generator)."""
    clock, backend, draws = Clock(), Recording(), random.Random(7)
    model = guard(backend, max_outage=10, first_delay=1.0, max_delay=64.0, latch=False, idle_probe=1.0, clock=clock,
                  rng=random.Random(7))
    backend.away = True
    clock.now += 1.0
    model.probe()  # idle probe: the outage starts, next probe after the first delay
    start = clock.now
    assert model._next_probe == start + outage_delay(0, 1.0, 64.0, rng=draws)
    clock.now = start + 10.0
    model.probe()  # due, fails at the budget: spent
    error = ("refused " + "x" * 400)[:300]
    for attempt in (1, 2):
        clock.now = max(clock.now, model._next_probe)
        assert model.probe() == ("backend flaky unavailable: " + (
            f"backend flaky still unavailable after an outage longer than --max_outage 10 s: {error}")[:300])
        assert model._next_probe == clock.now + outage_delay(attempt, 1.0, 64.0, rng=draws)
    with pytest.raises(OutageExceeded) as info:  # a call in that state: probes at once, fails with the whole line
        model.complete([req()])
    assert str(info.value) == f"backend flaky still unavailable after an outage longer than --max_outage 10 s: {error}"



def test_outages_are_logged_in_one_line_and_their_seconds_summed(caplog):
    """The warning a new outage logs (the error cut at 300 characters), and ``waited``:
    an outage ridden out (3 s) plus one that spent its budget (10 s)."""
    clock, backend = Clock(), Recording()
    model = guard(backend, max_outage=10, first_delay=1.0, max_delay=1.0, latch=False, idle_probe=1.0, clock=clock,
                  rng=random.Random(3))
    backend.away = True
    clock.now += 1.0
    with caplog.at_level("WARNING", logger="live_mind.models.outage"):
        model.probe()
    error = ("refused " + "x" * 400)[:300]
    assert [r.getMessage() for r in caplog.records][0] == f"backend flaky unavailable ({error}); waiting up to 10 s for it to come back"
    backend.away, clock.now = False, clock.now + 3.0
    with caplog.at_level("WARNING", logger="live_mind.models.outage"):
        assert model.probe() is None and model.waited == 3.0
    assert caplog.records[-1].getMessage() == "backend flaky is back after 3.0 s"
    backend.away, clock.now = True, clock.now + 1.0
    model.probe()  # a second outage, ridden out in 2 s
    backend.away, clock.now = False, clock.now + 2.0
    model.probe()
    assert model.waited == 5.0
    backend.away, clock.now = True, clock.now + 1.0
    model.probe()  # a third, past its budget
    clock.now += 10.0
    model.probe()
    assert model.waited == 15.0
    backend.away, clock.now = False, clock.now + 5.0
    assert model.probe() is None and model.waited == 15.0  # the spent outage was counted when it was spent


def test_a_latched_guard_past_its_budget_refuses_every_call_with_the_whole_line():
    clock, backend = Clock(), Recording()
    model = guard(backend, max_outage=10, first_delay=1.0, max_delay=1.0, idle_probe=1.0, clock=clock, rng=random.Random(3))
    backend.away = True
    clock.now += 1.0
    model.probe()
    clock.now += 10.0
    model.probe()  # spent
    with pytest.raises(OutageExceeded) as info:
        model.complete([req()])
    assert str(info.value) == f"backend flaky unavailable for 10 s, longer than --max_outage 10: {('refused ' + 'x' * 400)[:300]}"



def test_a_server_guard_reports_no_recovery_when_it_was_never_down_and_refuses_a_negative_budget():
    statuses: list = []
    model = guard(Backend(), latch=False, on_status=statuses.append)
    assert model.complete([req()])[0].text == "echo q" and statuses == [] and model.waited == 0.0
    with pytest.raises(ValueError, match="^max_outage must be >= 0$"):
        guard(Backend(), max_outage=-1)


def test_the_backoff_is_exponential_capped_and_jittered_by_the_given_generator():
    for attempt, base in ((0, 1.0), (3, 8.0), (9, 64.0)):
        draw = random.Random(attempt).random()
        assert outage_delay(attempt, 1.0, 64.0, jitter=0.25, rng=random.Random(attempt)) == base * (1.0 + 0.25 * (2.0 * draw - 1.0))
    assert outage_delay(2, 1.0, 64.0, jitter=0.0) == 4.0
