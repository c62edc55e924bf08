"""`Network`: a virtual network and subnet for pools, with a NAT gateway as their way out.

Nodes without public IP addresses still need outbound connections: to Batch's node
management endpoint (simplified communication), to package mirrors and registries.
Azure retired default outbound access for such pools, so the subnet gets a NAT gateway
with one static public IP, and `defaultOutboundAccess` is off. A service endpoint keeps
traffic to Azure Storage on the Azure backbone (and off the NAT gateway's bill).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network

__all__ = ["Network", "NetworkArgs"]


@dataclass(frozen=True)
class NetworkArgs:
    """What a `Network` needs."""

    resource_group_name: pulumi.Input[str]
    """Resource group the network goes in."""
    location: pulumi.Input[str]
    """Azure region (the same as the Batch account's)."""
    address_space: str
    """CIDR of the virtual network, e.g. 10.42.0.0/16."""
    subnet_prefix: str
    """CIDR of the pools' subnet inside it, e.g. 10.42.0.0/20 (one address per node)."""
    nat_gateway: bool = True
    """Give the subnet a NAT gateway for outbound traffic."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the network resources."""


class Network(pulumi.ComponentResource):
    """A virtual network whose `pools` subnet Batch pools join.

    Usage: `Network("bfprod-net", NetworkArgs(rg.name, loc, "10.42.0.0/16", "10.42.0.0/20"))`.
    """

    vnet_id: pulumi.Output[str]
    """Resource id of the virtual network."""
    subnet_id: pulumi.Output[str]
    """Resource id of the pools' subnet (a pool's `networkConfiguration.subnetId`)."""
    outbound_ip: pulumi.Output[str] | None
    """The NAT gateway's public IP (what firewalls of services the nodes call must allow)."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchflow:azure:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        vnet = network.VirtualNetwork(
            name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            tags=tags,
            opts=child,
        )
        nat = None
        self.outbound_ip = None
        if args.nat_gateway:
            ip = network.PublicIPAddress(
                f"{name}-nat-ip",
                resource_group_name=args.resource_group_name,
                location=args.location,
                sku=network.PublicIPAddressSkuArgs(
                    name=network.PublicIPAddressSkuName.STANDARD,
                    tier=network.PublicIPAddressSkuTier.REGIONAL,
                ),
                public_ip_allocation_method=network.IPAllocationMethod.STATIC,
                public_ip_address_version=network.IPVersion.I_PV4,
                tags=tags,
                opts=child,
            )
            nat = network.NatGateway(
                f"{name}-nat",
                resource_group_name=args.resource_group_name,
                location=args.location,
                sku=network.NatGatewaySkuArgs(name=network.NatGatewaySkuName.STANDARD),
                public_ip_addresses=[network.SubResourceArgs(id=ip.id)],
                idle_timeout_in_minutes=4,
                tags=tags,
                opts=child,
            )
            self.outbound_ip = ip.ip_address.apply(lambda address: address or "")
        subnet = network.Subnet(
            f"{name}-pools",
            subnet_name="pools",
            resource_group_name=args.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=args.subnet_prefix,
            default_outbound_access=False,
            nat_gateway=network.SubResourceArgs(id=nat.id) if nat is not None else None,
            service_endpoints=[
                network.ServiceEndpointPropertiesFormatArgs(service="Microsoft.Storage")
            ],
            opts=child,
        )

        self.vnet_id = vnet.id
        self.subnet_id = subnet.id
        outputs: dict[str, pulumi.Input[str]] = {"vnetId": self.vnet_id, "subnetId": self.subnet_id}
        if self.outbound_ip is not None:
            outputs["outboundIp"] = self.outbound_ip
        self.register_outputs(outputs)
