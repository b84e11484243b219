"""Delivery to a loopback Slack webhook and a loopback SMTP server (STARTTLS + AUTH); failures are
logged in the store, reported in the next digest, and never lose the written files."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from digest_seed import NOW, seeded_scope

from collector.config import load_settings
from collector.digest import build_digest, check_delivery_config, deliver
from collector.digest.deliver import slack_payload
from collector.digest.render import write_files
from collector.errors import ConfigError
from collector.windows import parse_window
from storage import Store

SECRET_PATH = "/services/T000/B000/very-secret-token"
PASSWORD = "s3cret-smtp-password"


@dataclass
class Webhook:
    """A loopback Slack incoming webhook: records each POST and answers with ``status``."""

    url: str = ""
    status: int = 200
    posts: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook receiver on 127.0.0.1, port 0."""
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.posts.append({"path": self.path, "type": self.headers["Content-Type"],
                               "json": json.loads(body)})
            reply = b"ok" if hook.status == 200 else b"invalid_payload"
            if hook.status == 404:  # as a gateway in front of Slack answers: the path echoed
                reply = f"Cannot POST {self.path}".encode()
            self.send_response(hook.status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}"
    yield hook
    server.shutdown()
    server.server_close()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to ``tmp``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "smtp.pem", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Mailbox:
    """What the loopback SMTP server accepted."""

    port: int
    cert: Path
    messages: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS before AUTH, and AUTH before mail."""
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    box = Mailbox(port, cert)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                 "data": envelope.content, "tls": session.ssl is not None,
                                 "authenticated": session.authenticated,
                                 "login": session.auth_data.login if session.auth_data else None})
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login == b"digest"
              and data.password == PASSWORD.encode())
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=authenticator, auth_require_tls=True,
                            auth_required=True)
    controller.start()
    yield box
    controller.stop()


def _settings(tmp_path: Path, **digest: Any) -> Any:
    lines = ["[digest]"] + [f"{k} = {json.dumps(v)}" for k, v in digest.items()]
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "evidence.db"}"\n' + "\n".join(lines) + "\n")
    return load_settings(path)


def _written(digest: dict[str, Any], tmp_path: Path) -> dict[str, Path]:
    return write_files(digest, tmp_path / "digests")


def test_slack_receives_the_summary(digest: dict[str, Any], seeded_store: Store, tmp_path: Path,
                                    webhook: Webhook) -> None:
    """The webhook receives one JSON POST with the coverage headline and what needs attention."""
    settings = _settings(tmp_path, slack_webhook_env="TEST_SLACK_URL")
    paths = _written(digest, tmp_path)
    results = deliver(settings, seeded_store, digest, paths, NOW, {"TEST_SLACK_URL": webhook.url})
    assert [(r.channel, r.ok) for r in results] == [("slack", True)]
    assert len(webhook.posts) == 1
    post = webhook.posts[0]
    assert post["path"] == SECRET_PATH and post["type"] == "application/json"
    assert post["json"] == slack_payload(digest, "digest-2026-W48.html")
    text = post["json"]["text"]
    assert text.startswith("*Evidence coverage digest 2026-W48: operating 1 of 4 criteria (25.0%), "
                           "designed 4 of 4, 2 exception lines (8 records)*")
    assert "Operating gaps: A1.2 (no evidence), CC6.1 (exceptions), CC7.2 (exceptions)" in text
    assert "security-lead@example.com (" in text and "synthetic.users (failing)" in text


def test_failed_delivery_is_logged_reported_next_week_and_keeps_files(
        digest: dict[str, Any], seeded_store: Store, tmp_path: Path, webhook: Webhook) -> None:
    """A webhook answering 500 is a failed delivery: the files stay, the error (without the secret
    URL) is stored, and next week's digest reports it."""
    webhook.status = 500
    settings = _settings(tmp_path, slack_webhook_env="TEST_SLACK_URL")
    paths = _written(digest, tmp_path)
    results = deliver(settings, seeded_store, digest, paths, NOW, {"TEST_SLACK_URL": webhook.url})
    assert [(r.channel, r.ok) for r in results] == [("slack", False)]
    assert results[0].error == "slack webhook answered HTTP 500: invalid_payload"
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
    scope = seeded_scope()
    next_week = build_digest(seeded_store, type(scope)(parse_window("2026-W49", "UTC"), scope.period,
                                                       scope.in_scope, scope.streams, scope.catalog),
                             NOW + dt.timedelta(days=7))
    assert next_week["delivery_failures"] == [
        {"week": "2026-W48", "channel": "slack", "attempted_at": "2026-11-30T08:00:00.000000Z",
         "error": "slack webhook answered HTTP 500: invalid_payload"}]
    closed = webhook.url.replace(webhook.url.split("/")[2], "127.0.0.1:9")
    results = deliver(settings, seeded_store, digest, paths, NOW, {"TEST_SLACK_URL": closed})
    assert results[0].error == "slack webhook unreachable: ConnectError"
    assert "secret" not in str(results)


def test_email_is_sent_over_starttls_with_auth(digest: dict[str, Any], seeded_store: Store,
                                               tmp_path: Path, smtp_server: Mailbox) -> None:
    """The HTML digest arrives over STARTTLS after AUTH, with the Markdown text part and the JSON
    attached; the password comes from the environment."""
    settings = _settings(tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_server.port,
                         smtp_user="digest", smtp_password_env="TEST_SMTP_PASSWORD",
                         smtp_ca_file=str(smtp_server.cert), mail_from="collector@example.com",
                         mail_to=["lead@example.com", "ciso@example.com"])
    check_delivery_config(settings)
    paths = _written(digest, tmp_path)
    results = deliver(settings, seeded_store, digest, paths, NOW, {"TEST_SMTP_PASSWORD": PASSWORD})
    assert [(r.channel, r.ok, r.error) for r in results] == [("email", True, None)]
    assert len(smtp_server.messages) == 1
    got = smtp_server.messages[0]
    assert got["tls"] and got["authenticated"] and got["login"] == b"digest"
    assert got["to"] == ["lead@example.com", "ciso@example.com"]
    msg = message_from_bytes(got["data"], policy=policy.default)
    assert msg["Subject"].startswith("Evidence coverage digest 2026-W48: operating 1 of 4 criteria")
    html = msg.get_body(("html",))
    text = msg.get_body(("plain",))
    # SMTP carries lines ending in CRLF; the content is otherwise the written files, byte for byte.
    assert html is not None and html.get_content().replace("\r\n", "\n") == paths["html"].read_text()
    assert text is not None and text.get_content().replace("\r\n", "\n") == paths["md"].read_text()
    attachments = {a.get_filename(): a.get_content() for a in msg.iter_attachments()}
    assert json.loads(attachments["digest-2026-W48.json"]) == digest


def test_email_failures_are_delivery_failures(digest: dict[str, Any], seeded_store: Store,
                                             tmp_path: Path, smtp_server: Mailbox) -> None:
    """An unverifiable certificate, a wrong password and an unset password variable each fail the
    e-mail delivery with a stored reason that never contains the password."""
    base = {"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port, "smtp_user": "digest",
            "smtp_password_env": "TEST_SMTP_PASSWORD", "mail_from": "c@example.com",
            "mail_to": ["lead@example.com"]}
    paths = _written(digest, tmp_path)
    untrusted = deliver(_settings(tmp_path, **base), seeded_store, digest, paths, NOW,
                        {"TEST_SMTP_PASSWORD": PASSWORD})
    trusted = _settings(tmp_path, **base, smtp_ca_file=str(smtp_server.cert))
    wrong = deliver(trusted, seeded_store, digest, paths, NOW, {"TEST_SMTP_PASSWORD": "nope"})
    unset = deliver(trusted, seeded_store, digest, paths, NOW, {})
    errors = [r[0].error or "" for r in (untrusted, wrong, unset)]
    assert "SSLCertVerificationError" in errors[0]
    assert "SMTPAuthenticationError" in errors[1]
    assert errors[2] == "environment variable $TEST_SMTP_PASSWORD is not set"
    assert smtp_server.messages == []
    assert not any(PASSWORD in e or "nope" in e for e in errors)
    assert all(p.exists() for p in paths.values())


def test_inconsistent_mail_settings_are_config_errors(tmp_path: Path) -> None:
    """An SMTP host without recipients, or a user without STARTTLS, is a ConfigError naming the key."""
    with pytest.raises(ConfigError, match=r"digest\.mail_to: required"):
        check_delivery_config(_settings(tmp_path, smtp_host="mail.example.com", mail_from="a@b.c"))
    with pytest.raises(ConfigError, match=r"digest\.smtp_starttls: must be true"):
        check_delivery_config(_settings(tmp_path, smtp_host="mail.example.com", mail_from="a@b.c",
                                        mail_to=["x@y.z"], smtp_user="u", smtp_starttls=False,
                                        smtp_password_env="P"))


def test_a_gateway_echoing_the_webhook_path_does_not_leak_it(
        digest: dict[str, Any], seeded_store: Store, tmp_path: Path, webhook: Webhook) -> None:
    """A proxy answering 404 "Cannot POST <path>" echoes the secret path; the stored error masks it.
    A trailing newline pasted into the variable is not fatal either."""
    settings = _settings(tmp_path, slack_webhook_env="TEST_SLACK_URL")
    paths = _written(digest, tmp_path)
    ok = deliver(settings, seeded_store, digest, paths, NOW, {"TEST_SLACK_URL": webhook.url + "\n"})
    assert [(r.channel, r.ok) for r in ok] == [("slack", True)]
    webhook.status = 404
    results = deliver(settings, seeded_store, digest, paths, NOW, {"TEST_SLACK_URL": webhook.url})
    assert results[0].ok is False
    assert results[0].error == "slack webhook answered HTTP 404: Cannot POST <webhook>"


def test_malformed_mail_settings_are_config_errors_not_tracebacks(tmp_path: Path) -> None:
    """A header injection in mail_from, a non-address recipient, a missing CA file: exit-2 errors."""
    base = {"smtp_host": "mail.example.com", "mail_to": ["x@y.z"]}
    with pytest.raises(ConfigError, match=r"digest\.mail_from: must not hold line breaks"):
        check_delivery_config(_settings(tmp_path, **base, mail_from="a@b.c\nBcc: all@x.y"))
    with pytest.raises(ConfigError, match=r"digest\.mail_to: 'lead' is not an e-mail address"):
        check_delivery_config(_settings(tmp_path, smtp_host="mail.example.com", mail_from="a@b.c",
                                        mail_to=["lead"]))
    with pytest.raises(ConfigError, match=r"digest\.smtp_ca_file: .*ca\.pem is not a readable file"):
        check_delivery_config(_settings(tmp_path, **base, mail_from="a@b.c", smtp_ca_file="ca.pem"))
    (tmp_path / "ca.pem").write_text("x")  # relative to the config's folder, not the CWD
    check_delivery_config(_settings(tmp_path, **base, mail_from="a@b.c", smtp_ca_file="ca.pem"))


def test_a_webhook_secret_in_the_query_string_never_reaches_logs_store_or_digest(
        digest: dict[str, Any], seeded_store: Store, tmp_path: Path, webhook: Webhook) -> None:
    """A webhook whose secret is a query parameter, echoed raw or decoded by a gateway, is masked in
    the stored error, the log event and therefore the next digest's delivery failures."""
    settings = _settings(tmp_path, slack_webhook_env="TEST_SLACK_URL")
    paths = _written(digest, tmp_path)
    webhook.status = 404
    secret = "qs-secret-t0k3n%2Bplus"
    url = f"{webhook.url}?sig={secret}&v=1#frag-secret-xyz"
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        results = deliver(settings, seeded_store, digest, paths, NOW, {"TEST_SLACK_URL": url})
    assert results[0].ok is False and "<webhook>" in (results[0].error or "")
    scope = seeded_scope()
    next_week = build_digest(seeded_store, type(scope)(parse_window("2026-W49", "UTC"), scope.period,
                                                       scope.in_scope, scope.streams, scope.catalog),
                             NOW + dt.timedelta(days=7))
    logged = [str(e) for e in logs if e["event"] == "digest_delivery_failed"]
    assert next_week["delivery_failures"] and logged
    for text in [results[0].error or "", str(next_week["delivery_failures"]), *logged]:
        for leak in ("qs-secret", "t0k3n", "sig=", "frag-secret"):
            assert leak not in text, text
    assert "?v=1" not in (results[0].error or "")
