"""The weekly coverage digest: build it from the store, render it, write and deliver it."""

from collector.digest.build import DigestScope, build_digest, default_week, scope_from_settings
from collector.digest.deliver import Delivery, DeliveryError, check_delivery_config, deliver
from collector.digest.job import DigestRun, run_digest, write_digest
from collector.digest.render import render_html, render_markdown

__all__ = [
    "Delivery",
    "DeliveryError",
    "DigestRun",
    "DigestScope",
    "build_digest",
    "check_delivery_config",
    "default_week",
    "deliver",
    "render_html",
    "render_markdown",
    "run_digest",
    "scope_from_settings",
    "write_digest",
]
