"""The webhook receiver for tests: :mod:`acr_ci.devkit.receiver` (the demo uses it too)."""

from acr_ci.devkit.receiver import ReceivedRequest, WebhookReceiver

__all__ = ["ReceivedRequest", "WebhookReceiver"]
