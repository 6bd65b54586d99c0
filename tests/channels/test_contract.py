"""One contract, every transport of every channel kind: each is built from a config through
the registry, talks to its real local server (tests/channels/rigs.py) and keeps the promises
the dispatcher relies on: what is refused before sending, which errors may be retried, what
a timeout means, and that French text arrives as written.

The pairs come from the channel registry (every kind's ``transport`` union) plus the kinds
that live in the test folder, so a kind added to bot/ is checked here at once, and fails
until it has a rig. Service-specific behaviour is tested in tests/channels/<kind>/.
"""

from __future__ import annotations

import pytest

from bot.errors import ConfigError, PermanentError, TransientError, UncertainDelivery
from bot.models import Message, Receipt
from tests.channels import rigs
from tests.channels.rigs import TEXT, Rig

pytestmark = [
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
    # PTB reads RetryAfter.retry_after while building the exception and warns about its type change
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pair" in metafunc.fixturenames:
        pairs = rigs.pairs()
        metafunc.parametrize("pair", pairs, ids=[f"{kind}-{transport}" for kind, transport in pairs])


@pytest.fixture
def rig(pair, tmp_path, monkeypatch):
    kind, transport = pair
    with rigs.rig(kind, transport, tmp_path, monkeypatch) as r:
        yield r


def test_every_kind_and_transport_is_covered():
    """The registry's kinds and transports, and the test folder's pigeon, are all here."""
    pairs = set(rigs.pairs())
    assert {("email", "smtp"), ("email", "file"), ("telegram", "telegram"), ("telegram", "file"),
            ("x", "x"), ("x", "file"), ("pigeon", "pigeon"), ("pigeon", "file")} <= pairs
    assert {transport for _, transport in pairs} <= set(rigs.RIGS)
    assert {kind for kind, _ in pairs} <= set(rigs.SAMPLES)


async def test_french_text_arrives_intact_with_a_receipt(rig: Rig):
    async with rig.transport() as transport:
        receipt = await transport.send(rig.message())
    assert isinstance(receipt, Receipt) and receipt.transport == rig.name
    assert rig.arrived() == [TEXT]


async def test_several_messages_go_on_one_open_transport(rig: Rig):
    texts = [f"{TEXT} ({i})" for i in range(3)]  # distinct: X refuses the same text twice
    async with rig.transport() as transport:
        for i, text in enumerate(texts):
            await transport.send(rig.message(text, key=f"contract:e1:p{i}"))
    assert rig.arrived() == texts


async def test_a_message_of_another_kind_is_refused_and_nothing_is_sent(rig: Rig):
    foreign = [s.message() for s in rigs.SAMPLES.values() if s.kind != rig.sample.kind]
    async with rig.transport() as transport:
        before = rig.requests()
        for message in foreign:
            with pytest.raises(PermanentError):
                await transport.send(message)
        assert rig.requests() == before
    assert rig.arrived() == []


async def test_a_body_of_another_kind_under_this_kinds_name_is_refused(rig: Rig):
    """A transport checks that the *body* is of its kind, not only the label (bot.models.Message).
    The file transport once checked only the label and wrote an email's text as an X post."""
    mine = rig.message()
    foreign = [Message(mine.key, mine.channel_id, mine.kind, mine.destination, s.body(TEXT))
               for s in rigs.SAMPLES.values() if s.kind != rig.sample.kind]
    async with rig.transport() as transport:
        before = rig.requests()
        for message in foreign:
            with pytest.raises(PermanentError):
                await transport.send(message)
        assert rig.requests() == before
    assert rig.arrived() == []


async def test_a_text_at_the_limit_goes_and_one_over_is_refused_before_any_request(rig: Rig):
    transport = rig.transport()
    limit = type(transport).max_text
    if limit is None:
        pytest.skip(f"the {rig.name} transport declares no text limit")
    async with transport:
        before = rig.requests()
        with pytest.raises(PermanentError):
            await transport.send(rig.message(rig.filler(limit + 1), key="contract:e1:p1"))
        assert rig.requests() == before  # refused here, not by the service
        await transport.send(rig.message(rig.filler(limit), key="contract:e1:p2"))
    assert rig.arrived() == [rig.filler(limit)]  # the declared limit is the service's own


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
async def test_a_missing_secret_is_a_config_error_naming_its_variable(rig: Rig, monkeypatch, value):
    secrets = rig.config().channels[0].transport.secret_envs()
    if not secrets:
        pytest.skip(f"the {rig.name} transport reads no secret")
    for _, env in secrets:
        with monkeypatch.context() as m:
            if value is None:
                m.delenv(env, raising=False)
            else:
                m.setenv(env, value)
            transport = rig.transport()
            with pytest.raises(ConfigError, match=env):
                await transport.open()
                await transport.send(rig.message())
            await transport.aclose()
    assert rig.requests() == 0
    assert rig.arrived() == []


async def test_no_answer_in_time_means_the_message_may_be_out(rig: Rig):
    """The service took the message and went quiet: an at-most-once transport must not say
    "retry" (that would post twice); an at-least-once one may."""
    rig.answer_late()
    async with rig.transport(timeout="1s") as transport:
        expected = (TransientError, UncertainDelivery) if transport.at_least_once else UncertainDelivery
        with pytest.raises(expected):
            await transport.send(rig.message())
    assert rig.arrived() == [TEXT]  # the service has it indeed


async def test_a_service_error_is_transient_and_the_next_message_goes(rig: Rig):
    async with rig.transport() as transport:
        rig.fail_service()
        with pytest.raises(TransientError) as info:
            await transport.send(rig.message(key="contract:e1:p1"))
        assert rig.arrived() == []
        await transport.send(rig.message(key="contract:e1:p2"))
    assert info.value.retry_after is None or info.value.retry_after >= 0
    assert rig.arrived() == [TEXT]


async def test_flood_control_is_transient_with_the_services_delay(rig: Rig):
    async with rig.transport() as transport:
        rig.rate_limit(7)
        with pytest.raises(TransientError) as info:
            await transport.send(rig.message())
    # X states a reset time in whole epoch seconds: up to a second is lost to rounding, and a
    # little more while the answer travels; never more than the service said
    assert 5 < info.value.retry_after <= 7
    assert rig.arrived() == []


async def test_an_unreachable_service_is_transient_and_nothing_arrives(rig: Rig):
    """Nothing listens there: the request never left, so the outbox may safely retry."""
    transport = rig.transport(**rig.unreachable())
    with pytest.raises(TransientError):  # not UncertainDelivery, its sibling
        await transport.open()
        await transport.send(rig.message())
    await transport.aclose()
    assert rig.arrived() == []
