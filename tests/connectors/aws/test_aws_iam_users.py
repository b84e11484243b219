"""aws.iam_users through boto3 against moto (in process and over loopback): shape, accounts, removal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from botocore.stub import Stubber
from conftest import REGION, MotoServer

from connectors.aws import AwsConfig, AwsConnector
from connectors.aws._access import Target
from connectors.aws.iam_users import GONE, email_tag
from connectors.sdk import Cursor, SourceItem
from connectors.sdk.items import ItemFailure, Normalised, Skipped
from sandbox.aws_seed import IAM_PEOPLE, IAM_SERVICE_USERS, delete_user, seed_iam, seed_people
from storage import Store

CEILING = datetime(2030, 1, 1, tzinfo=UTC)


def _connector(session: Any, **config: Any) -> AwsConnector:
    return AwsConnector(AwsConfig(streams=("iam_users",), **config), session=session, sleep=lambda _: None)


def _outputs(aws: AwsConnector) -> list[Any]:
    return list(aws.stream("iam_users").fetch(Cursor(None, CEILING, CEILING - timedelta(days=1))))


def _records(aws: AwsConnector) -> dict[str, Normalised]:
    stream = aws.stream("iam_users")
    return {o.data["user_name"]: o for o in (stream.normalise(i) for i in _outputs(aws)
                                             if isinstance(i, SourceItem))}


def test_users_carry_groups_policies_credentials_and_the_email_tag(moto_server: MotoServer) -> None:
    """Over loopback HTTP each IAM user is one account record in the agreed shape: groups, attached
    and inline policies, console access, active keys, tags and the email tag; nobody is an exception."""
    iam = moto_server.client("iam")
    seed_iam(iam)
    emails = seed_people(iam)
    records = _records(_connector(moto_server.session, endpoint_url=moto_server.url))
    assert set(records) == set(emails) | {"svc-deploy"}
    gone = records["dritchie"]
    assert gone.kind == "account" and gone.actor == "dritchie" and gone.exception is None
    data = gone.data
    assert set(data) == {"account_id", "user_name", "user_id", "arn", "created", "groups", "attached_policies",
                         "inline_policies", "console_access", "password_last_used", "active_keys", "tags",
                         "email", "active"}
    assert data["arn"] == f"arn:aws:iam::{data['account_id']}:user/dritchie"
    assert data["groups"] == ["engineers"] and data["inline_policies"] == ["oncall-logs"]
    assert data["console_access"] is True and data["active"] is True
    assert data["email"] == IAM_PEOPLE["dritchie"] and data["tags"]["team"] == "eng"
    [key] = data["active_keys"]
    assert set(key) == {"id", "created", "last_used"} and key["id"].startswith("AKIA")
    ci = records["ci-deploy"].data
    assert ci["console_access"] is False and ci["active"] is True and ci["email"] is None
    assert ci["attached_policies"] == [f"arn:aws:iam::{ci['account_id']}:policy/deploy"]
    assert records["bob"].data["active_keys"] == [] and records["bob"].data["console_access"] is True
    assert all(r.exception is None for r in records.values())
    assert set(IAM_SERVICE_USERS) <= set(records)


def test_a_user_without_console_or_active_key_is_inactive(moto_session: Any) -> None:
    """An IAM user whose only key is deactivated and who has no password is recorded as inactive,
    and its inactive key is not listed."""
    iam = moto_session.client("iam", region_name=REGION)
    iam.create_user(UserName="parked")
    key = iam.create_access_key(UserName="parked")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="parked", AccessKeyId=key, Status="Inactive")
    data = _records(_connector(moto_session))["parked"].data
    assert data["console_access"] is False and data["active_keys"] == [] and data["active"] is False


def test_reads_are_identical_until_a_user_is_deleted(moto_server: MotoServer) -> None:
    """Two reads with no change give the same keys and raw bytes (no per-request noise); after the
    user is deleted in moto, the next read has no record of it."""
    iam = moto_server.client("iam")
    seed_iam(iam)
    seed_people(iam)
    aws = _connector(moto_server.session, endpoint_url=moto_server.url)
    first = [o for o in _outputs(aws) if isinstance(o, SourceItem)]
    second = [o for o in _outputs(aws) if isinstance(o, SourceItem)]
    assert [(i.key, i.raw) for i in first] == [(i.key, i.raw) for i in second]
    assert all(i.observed_at == CEILING for i in first)
    assert b"RequestId" not in first[0].raw and b"<ListGroupsForUserResult>" in first[0].raw
    delete_user(iam, "dritchie")
    after = _records(aws)
    assert "dritchie" not in after and len(after) == len(first) - 1


def test_a_user_deleted_during_the_read_is_skipped(moto_session: Any) -> None:
    """A listed user whose details answer NoSuchEntity is counted as skipped, not a failure."""
    seed_iam(moto_session.client("iam", region_name=REGION))
    aws = _connector(moto_session)
    iam = aws.session().client(Target(None), "iam", REGION, "iam_users")
    admin = moto_session.client("iam", region_name=REGION)

    def delete_bob_first(params: dict[str, Any], **_: Any) -> None:
        if params["UserName"] == "bob":
            delete_user(admin, "bob")

    iam.meta.events.register("provide-client-params.iam.ListGroupsForUser", delete_bob_first)
    outputs = _outputs(aws)
    assert Skipped(GONE) in outputs and not [o for o in outputs if isinstance(o, ItemFailure)]
    assert {o.key.rsplit("/", 1)[1] for o in outputs if isinstance(o, SourceItem)} == {"alice", "svc-deploy"}


def test_each_account_is_read_through_its_role_and_a_denied_account_is_partial(
        moto_session: Any, tmp_path: Any) -> None:
    """With assume_role_arns each account is read as its role; an account that refuses ListUsers is
    one failed part, the other account's users are stored as account records filed CC6.1-CC6.3."""
    from collector.catalog import Catalog, Filing
    from collector.pipeline import Pipeline

    roles = ("arn:aws:iam::111111111111:role/EvidenceCollector",
             "arn:aws:iam::222222222222:role/EvidenceCollector")
    aws = _connector(moto_session, assume_role_arns=roles)
    denied = aws.session().client(Target(roles[0]), "iam", REGION, "iam_users")
    allowed = aws.session().client(Target(roles[1]), "iam", REGION, "iam_users")
    seed_iam(allowed)
    store = Store.open(f"sqlite:///{tmp_path / 'evidence.db'}")
    with Stubber(denied) as stub:
        stub.add_client_error("list_users", "AccessDenied", "not authorised", 403)
        result = Pipeline(store, Filing(Catalog.builtin(), {}), batch_size=50).run(
            aws.stream("iam_users"), aws.config)
    assert result.status == "partial" and result.records_new == 3
    assert result.error is not None and result.error.startswith("aws:111111111111")
    with store.engine.connect() as conn:
        bodies = [orjson.loads(b) for b in conn.execute(sa.text("SELECT body FROM evidence")).scalars()]
    store.close()
    assert {b["data"]["account_id"] for b in bodies} == {"222222222222"}
    assert all(b["kind"] == "account" and b["controls"] == ["CC6.1", "CC6.2", "CC6.3"] for b in bodies)


@pytest.mark.parametrize(("tags", "email"), [
    ({"email": "a@x"}, "a@x"), ({"Email": " b@x "}, "b@x"), ({"team": "eng"}, None), ({"email": ""}, None)])
def test_email_tag_is_found_without_regard_to_case(tags: dict[str, str], email: str | None) -> None:
    """The email tag's key is matched without case and its value trimmed; blank is no email."""
    assert email_tag(tags) == email
