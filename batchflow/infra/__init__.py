"""Infrastructure as code: the Pulumi components behind `pulumi up` and `batchflow infra plan`.

```
config.py        the stack settings: schema, defaults, resolved types, StackConfigError
parse.py         raw settings -> StackConfig (parse_pools.py: the pools; rules.py: Azure's rules)
node_setup.py    what fresh nodes need: allow_other on blob mounts, apt waiting for the dpkg lock
storage.py       Storage: StorageV2 account, containers, firewall, protection (lock)
identity.py      ManagedIdentity: user-assigned identity, roles with deterministic names
account.py       BatchAccount: auto-storage through the identity, authentication modes
network.py       Network: virtual network, subnet, NAT gateway for pools without public IPs
pool.py          Pool: one Batch pool from a PoolConfig
environment.py   BatchEnvironment: all of the above for one stack, and its stack outputs
program.py       what `__main__.py` calls: read the stack's config from Pulumi
mocks.py         run a Pulumi program under mocks: no CLI, no plugin, no cloud
plan.py          `batchflow infra plan`: a stack file -> the resources it would create
summary.py       the key settings of a planned resource, for reviewers
```

`config.py`, `parse*.py`, `rules.py` and `node_setup.py` import only the standard library;
the rest import Pulumi, so nothing here is imported on the CLI's start-up path. This package imports
nothing from the rest of batchflow.
"""
