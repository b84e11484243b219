"""Okta shapes from real payloads: impossible timestamps, a user id listed twice, users who can sign
in although not ACTIVE, and security questions as the only factor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import pytest
import sqlalchemy as sa

from collector.catalog import Catalog, Filing
from collector.config import load_settings
from collector.errors import ConfigError
from collector.pipeline import Pipeline
from connectors.okta import OktaConfig, OktaConnector
from connectors.okta.users import NO_ACTIVE_FACTOR
from connectors.sdk import Cursor, ItemFailure, SourceItem
from sandbox.okta import FakeOkta
from sandbox.okta_data import OktaOrg, make_event
from storage import Store

Make = Callable[..., OktaConnector]
ADMIN = {"id": "00uadmin000000000001", "alternateId": "admin@example.com", "displayName": "Admin"}


def _stored(store: Store, stream: str) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT source_key FROM evidence WHERE stream = :s"), {"s": stream}).scalars())


def test_an_impossible_published_is_one_failure_and_never_holds_the_cursor(
        connector_for: Make, fake: FakeOkta, anchor: datetime, tmp_path: Path) -> None:
    """An event published on September 31st (Okta's own documented example) is one item failure;
    the events after it are stored, and the next run neither fails nor re-reads up to it."""
    connector = connector_for(streams=("system_log",))
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    pipeline = Pipeline(store, Filing(Catalog.builtin(), {}))
    stream = connector.stream("system_log")
    assert pipeline.run(stream, connector.config).status == "ok"
    at = anchor + timedelta(minutes=5)
    bad = make_event(Random(1), "user.lifecycle.create", at, ADMIN)
    bad["published"] = "2017-09-31T22:37:57.000Z"  # the fixed-width form: no shortcut skips the check
    fake.add_event_at(bad, at)
    after = make_event(Random(2), "user.lifecycle.activate", at + timedelta(seconds=1), ADMIN)
    fake.add_events([after])
    first = pipeline.run(stream, connector.config)
    assert first.status == "partial" and first.failures == 1
    assert first.error is not None and first.error.startswith(f"{bad['uuid']}: ItemError: unreadable event")
    assert after["uuid"] in _stored(store, "okta.system_log") and bad["uuid"] not in _stored(store, "okta.system_log")
    second = pipeline.run(stream, connector.config)
    assert second.status == "ok" and second.failures == 0 and second.records_new == 0
    store.close()


def test_a_lone_bad_event_on_a_first_run_is_marked_read() -> None:
    """Even as the only event of a first run, the bad event is checkpointed before it is reported."""
    at = datetime.now(UTC) - timedelta(minutes=2)
    bad = make_event(Random(1), "user.session.start", at, ADMIN)
    bad["published"] = "2026-02-30T10:00:00.000Z"
    fresh = FakeOkta(OktaOrg())
    fresh.add_event_at(bad, at)
    with fresh:
        connector = OktaConnector(OktaConfig(org_url=fresh.url), env={"OKTA_API_TOKEN": fresh.token})
        now = datetime.now(UTC)
        outputs = list(connector.stream("system_log").fetch(Cursor(None, now, now - timedelta(days=1))))
        assert [type(o).__name__ for o in outputs] == ["Checkpoint", "ItemFailure"]
        again = list(connector.stream("system_log").fetch(Cursor(outputs[0].cursor, now, now - timedelta(days=1))))
        assert again == []
        connector.close()


def test_a_user_id_listed_twice_is_an_item_failure(connector_for: Make, fake: FakeOkta, org: OktaOrg) -> None:
    """The second entry under an id already listed is an ItemFailure "<id> (repeated)"; the first
    is stored once; without a repeat there is no failure."""
    now = datetime.now(UTC)
    cursor = Cursor(None, now, now - timedelta(days=1))
    clean = list(connector_for().stream("users").fetch(cursor))
    assert not [o for o in clean if isinstance(o, ItemFailure)]
    victim = org.users[4]["id"]
    fake.repeat_in_listing(victim)
    outputs = list(connector_for().stream("users").fetch(cursor))
    assert [(o.key, o.error_class) for o in outputs if isinstance(o, ItemFailure)] == [
        (f"{victim} (repeated)", "ItemError")]
    assert [o.key for o in outputs if isinstance(o, SourceItem)].count(victim) == 1


def _user(status: str, *factors: tuple[str, str]) -> SourceItem:
    user = {"id": "00u1example000000001", "status": status, "profile": {"login": "pat@example.com"}}
    listed = [{"id": f"f{n}", "factorType": kind, "provider": "OKTA", "status": state}
              for n, (kind, state) in enumerate(factors)]
    return SourceItem(user["id"], datetime.now(UTC), b"{}", {"user": user, "factors": listed})


@pytest.mark.parametrize(("status", "factors", "exception"), [
    ("ACTIVE", (), NO_ACTIVE_FACTOR),
    ("PASSWORD_EXPIRED", (), "PASSWORD_EXPIRED user has no active MFA factor"),
    ("RECOVERY", (("sms", "PENDING_ACTIVATION"),), "RECOVERY user has no active MFA factor"),
    ("LOCKED_OUT", (), "LOCKED_OUT user has no active MFA factor"),
    ("LOCKED_OUT", (("push", "ACTIVE"),), None),
    ("PASSWORD_EXPIRED", (("webauthn", "ACTIVE"),), None),
    ("STAGED", (), None), ("PROVISIONED", (), None), ("SUSPENDED", (), None),
    ("ACTIVE", (("question", "ACTIVE"),), "ACTIVE user's only active MFA factors are weak (question)"),
    ("RECOVERY", (("question", "ACTIVE"), ("sms", "PENDING_ACTIVATION")),
     "RECOVERY user's only active MFA factors are weak (question)"),
    ("ACTIVE", (("question", "ACTIVE"), ("push", "ACTIVE")), None),
    ("STAGED", (("question", "ACTIVE"),), None),
])
def test_users_who_can_sign_in_need_a_real_active_factor(
        connector_for: Make, status: str, factors: tuple[tuple[str, str], ...], exception: str | None) -> None:
    """ACTIVE, PASSWORD_EXPIRED, RECOVERY and LOCKED_OUT users can sign in: each is an exception
    without an ACTIVE factor, or when the only ACTIVE ones are weak (default: the security question)."""
    normalised = connector_for().stream("users").normalise(_user(status, *factors))
    assert normalised.exception == exception


def test_user_email_comes_from_the_profile_and_is_null_when_absent(connector_for: Make) -> None:
    """okta.users data carries profile.email (which may differ from the login), null without one."""
    stream = connector_for().stream("users")
    item = _user("ACTIVE", ("push", "ACTIVE"))
    assert stream.normalise(item).data["email"] is None
    item.obj["user"]["profile"]["email"] = "pat.lee@example.com"
    data = stream.normalise(item).data
    assert data["email"] == "pat.lee@example.com" and data["login"] == "pat@example.com"


def test_weak_factors_is_configurable(connector_for: Make) -> None:
    """weak_factors names the types that do not count: SMS can be added, and the question removed."""
    strict = connector_for(weak_factors=("question", "sms")).stream("users")
    assert strict.normalise(_user("ACTIVE", ("sms", "ACTIVE"))).exception == \
        "ACTIVE user's only active MFA factors are weak (sms)"
    assert strict.normalise(_user("ACTIVE", ("sms", "ACTIVE"), ("push", "ACTIVE"))).exception is None
    lenient = connector_for(weak_factors=()).stream("users")
    assert lenient.normalise(_user("ACTIVE", ("question", "ACTIVE"))).exception is None


@pytest.mark.parametrize(("value", "key", "problem"), [
    ('["questoin"]', "connectors.okta.weak_factors[0]", '"questoin" is not an Okta factor type'),
    ('"question"', "connectors.okta.weak_factors", "expected an array of strings"),
    ("[1]", "connectors.okta.weak_factors[0]", "expected a string"),
])
def test_bad_weak_factors_is_a_config_error_naming_the_key(tmp_path: Path, value: str, key: str,
                                                            problem: str) -> None:
    """A weak_factors entry that is not an Okta factor type, or not a list of strings, is a
    ConfigError naming the key."""
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "e.db"}"\n[connectors.okta]\n'
                    f'org_url = "https://acme.okta.com"\nweak_factors = {value}\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == key and problem in str(caught.value)
