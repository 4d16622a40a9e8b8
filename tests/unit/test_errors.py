"""The error tree: whether an upstream failure is worth retrying is said by the adapter that raises it."""

from __future__ import annotations

from mns.mns_exception import MNSClientNetworkException, MNSClientParameterException, MNSServerException

from bot.adapters.mns import _upstream
from bot.errors import ChatOpsError, Conflict, UpstreamError, UserError, user_message


def test_upstream_errors_are_not_retryable_unless_the_adapter_says_so():
    assert UpstreamError("ECS", "boom").retryable is False
    assert UpstreamError("ECS", "busy", code="Throttling", retryable=True).retryable is True
    assert ChatOpsError("x").retryable is False and UserError("no").retryable is False
    conflict = Conflict("PagerDuty", "exists", code="400")
    assert isinstance(conflict, UpstreamError) and not conflict.retryable
    assert user_message(conflict) == ":x: PagerDuty: exists — code 400"


def test_mns_failures_say_whether_they_are_worth_retrying():
    network = _upstream(MNSClientNetworkException("NetworkException", "connection refused"), "receive failed")
    assert network.retryable and network.provider == "MNS"
    busy = _upstream(MNSServerException("InternalError", "try later", "req-1", "host"), "delete failed")
    assert busy.retryable and busy.request_id == "req-1" and busy.code == "InternalError"
    denied = _upstream(MNSServerException("AccessDenied", "no", "req-2", "host"), "receive failed")
    assert not denied.retryable and denied.code == "AccessDenied"
    bad = _upstream(MNSClientParameterException("InvalidArgument", "bad"), "send failed")
    assert not bad.retryable
