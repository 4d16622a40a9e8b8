"""The SLB adapter (alibabacloud_slb20140515) against the SLB emulator, over loopback."""

from __future__ import annotations

import pytest

from bot.adapters.slb import Backend, SlbAdapter, make_client
from bot.config import load_settings
from bot.errors import UpstreamError
from sandbox import credentials
from sandbox.slb_emulator import SlbEmulator


@pytest.fixture
def slb():
    emu = SlbEmulator().start()
    emu.add_group(
        "rsp-web",
        "web",
        backends=[
            {"ServerId": "i-a", "Port": 80},
            {"ServerId": "i-a", "Port": 8080},
            {"ServerId": "i-b", "Port": 80},
        ],
    )
    yield emu
    emu.stop()


def adapter_for(emu, secret=credentials.ALIBABA_ACCESS_KEY_SECRET) -> SlbAdapter:
    settings = load_settings(
        {
            "SLB_ENDPOINT": emu.base_url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials.ALIBABA_ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
            "ALIBABA_CLOUD_REGION_ID": credentials.REGION_ID,
        }
    )
    return SlbAdapter(make_client(settings), credentials.REGION_ID)


def test_describe_and_remove_one_instance_on_every_port(slb):
    slb_adapter = adapter_for(slb)
    group = slb_adapter.describe_vserver_group("rsp-web")
    assert group.name == "web" and len(group.backends) == 3
    mine = group.backends_of("i-a")
    assert sorted(b.port for b in mine) == [80, 8080]
    after = slb_adapter.remove_backends("rsp-web", mine)
    assert [b.server_id for b in after.backends] == ["i-b"]
    assert slb.server_ids("rsp-web") == ["i-b"]
    (call,) = slb.calls_named("RemoveVServerGroupBackendServers")
    assert call.status == 200 and call.request.query["RegionId"] == credentials.REGION_ID


def test_removing_an_absent_backend_is_ignored(slb):
    after = adapter_for(slb).remove_backends("rsp-web", [Backend("i-zzz", 80)])
    assert len(after.backends) == 3


def test_more_than_twenty_backends_go_in_chunks(slb):
    slb_adapter = adapter_for(slb)
    many = [Backend(f"i-{n:03d}", 80) for n in range(45)]
    assert len(slb_adapter.add_backends("rsp-web", many).backends) == 48
    assert len(slb.calls_named("AddVServerGroupBackendServers")) == 3
    assert len(slb_adapter.remove_backends("rsp-web", many).backends) == 3


def test_unknown_group_and_bad_signature_are_upstream_errors_with_request_ids(slb):
    with pytest.raises(UpstreamError) as err:
        adapter_for(slb).describe_vserver_group("rsp-nope")
    assert err.value.provider == "SLB" and err.value.code == "InvalidParameter" and err.value.request_id
    with pytest.raises(UpstreamError) as err:
        adapter_for(slb, secret="wrong").describe_vserver_group("rsp-web")
    assert err.value.code == "SignatureDoesNotMatch"


def test_throttling_is_retried_a_bounded_number_of_times(slb):
    slb.inject("RemoveVServerGroupBackendServers", "Throttling.User", status=400, times=1)
    after = adapter_for(slb).remove_backends("rsp-web", [Backend("i-b", 80)])
    assert "i-b" not in [b.server_id for b in after.backends]
    slb.inject("DescribeVServerGroupAttribute", "ServiceUnavailable", status=503, times=5)
    with pytest.raises(UpstreamError):
        adapter_for(slb).describe_vserver_group("rsp-web")
    assert len(slb.calls_named("DescribeVServerGroupAttribute")) == 3
