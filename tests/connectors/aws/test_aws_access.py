"""The access object the AWS streams share: it builds a boto3 client only when a stream needs it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
from conftest import utcnow

from connectors.sdk.items import Cursor


def test_only_the_running_stream_builds_a_client(moto_session: boto3.Session, make_connector: Any) -> None:
    """Building, checking and declaring every stream builds no client; running one builds its own only."""
    built: list[str] = []
    moto_session.events.register("creating-client-class",
                                 lambda event_name, **_: built.append(event_name.rsplit(".", 1)[1]))
    aws = make_connector(moto_session)
    aws.check()
    streams = {name: aws.stream(name) for name in aws.stream_names()}
    assert built == []
    now = utcnow()
    assert list(streams["rds_snapshots"].fetch(Cursor(None, now, now - timedelta(days=1)))) == []
    assert built == ["rds"]
    aws.close()


_MODELS = ("endpoints", "partitions", "sdk-default-configuration", "_retry",
           *(f"{service}/{kind}" for service in ("s3", "iam", "backup", "rds", "sts", "cloudtrail")
             for kind in ("service-2", "endpoint-rule-set-1", "paginators-1")))


def test_model_files_read_as_botocore_reads_them(tmp_path: Path) -> None:
    """Every model file an AWS collection loads parses to the same values, in the same order, as
    botocore's own JSON loader gives; a file orjson refuses is read as botocore would read it."""
    import botocore.loaders

    from connectors.aws._access import _ModelFiles

    theirs, ours = botocore.loaders.JSONFileLoader(), _ModelFiles()
    loader = botocore.loaders.Loader()
    for name in _MODELS:
        if "/" in name:
            service, kind = name.split("/")
            api = loader.determine_latest_version(service, kind)
            name = f"{service}/{api}/{kind}"
        path = str(Path(botocore.loaders.BOTOCORE_ROOT) / "data" / name)
        assert ours.exists(path) and theirs.exists(path), name
        expected = theirs.load_file(path)
        assert expected is not None
        assert json.dumps(ours.load_file(path)) == json.dumps(expected), name
    odd = tmp_path / "odd"
    odd.with_suffix(".json").write_text('{"big": 123456789012345678901234567890, "nan": NaN}')
    assert json.dumps(ours.load_file(str(odd))) == json.dumps(theirs.load_file(str(odd)))
    assert ours.load_file(str(tmp_path / "missing")) is None and not ours.exists(str(tmp_path / "missing"))


def test_sessions_the_access_object_opens_read_models_with_orjson() -> None:
    """The collector's own session (the standard chain) parses botocore's models with _ModelFiles."""
    from connectors.aws import AwsConfig
    from connectors.aws._access import AwsAccess, _ModelFiles

    access = AwsAccess(AwsConfig())
    loader = access.base_session._session.get_component("data_loader")
    assert isinstance(loader.file_loader, _ModelFiles)
    client = access.client(access.targets()[0], "backup", "us-east-1")
    assert client.meta.service_model.service_name == "backup"
    access.close()
