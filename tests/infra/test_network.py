"""`Network` under mocks: a subnet for pools, its NAT gateway and no default outbound access."""

from __future__ import annotations

import pulumi

from batchflow.infra.mocks import MockRun
from batchflow.infra.network import Network, NetworkArgs

from .conftest import LOCATION, RG, children_of, run

SUBNET = "azure-native:network:Subnet"
NAT = "azure-native:network:NatGateway"
IP = "azure-native:network:PublicIPAddress"


def build(nat_gateway: bool = True) -> MockRun:
    def program() -> dict[str, pulumi.Output[str]]:
        net = Network(
            "bf-net", NetworkArgs(RG, LOCATION, "10.42.0.0/16", "10.42.0.0/20", nat_gateway)
        )
        outputs = {"vnet_id": net.vnet_id, "subnet_id": net.subnet_id}
        if net.outbound_ip is not None:
            outputs["outbound_ip"] = net.outbound_ip
        return outputs

    return run(program)


def test_virtual_network_and_subnet_take_the_configured_ranges() -> None:
    result = build()
    vnet = result.one("azure-native:network:VirtualNetwork")
    subnet = result.one(SUBNET)
    assert vnet.inputs["addressSpace"] == {"addressPrefixes": ["10.42.0.0/16"]}
    assert subnet.inputs["addressPrefix"] == "10.42.0.0/20"
    assert subnet.inputs["virtualNetworkName"] == vnet.state["name"]
    assert subnet.inputs["subnetName"] == "pools"
    assert result.outputs["subnet_id"] == subnet.state["id"]
    assert result.outputs["vnet_id"] == vnet.state["id"]


def test_subnet_goes_out_through_a_nat_gateway_with_a_static_ip() -> None:
    result = build()
    subnet, nat, ip = result.one(SUBNET), result.one(NAT), result.one(IP)
    assert subnet.inputs["natGateway"] == {"id": nat.state["id"]}
    assert subnet.inputs["defaultOutboundAccess"] is False
    assert nat.inputs["publicIpAddresses"] == [{"id": ip.state["id"]}]
    assert nat.inputs["sku"] == {"name": "Standard"}
    assert ip.inputs["sku"] == {"name": "Standard", "tier": "Regional"}
    assert ip.inputs["publicIPAllocationMethod"] == "Static"
    assert result.outputs["outbound_ip"] == ip.state["ipAddress"]


def test_storage_traffic_stays_on_a_service_endpoint() -> None:
    subnet = build().one(SUBNET)
    assert subnet.inputs["serviceEndpoints"] == [{"service": "Microsoft.Storage"}]


def test_without_nat_gateway_no_nat_and_no_public_ip() -> None:
    result = build(nat_gateway=False)
    assert result.of_type(NAT) == [] and result.of_type(IP) == []
    assert "natGateway" not in result.one(SUBNET).inputs
    assert "outbound_ip" not in result.outputs


def test_every_child_has_the_component_as_parent() -> None:
    result = build()
    children = children_of(result, "batchflow:azure:Network")
    assert len(children) == 4
    assert {r.urn for r in result.resources if r.custom} == {c.urn for c in children}
