"""The Pulumi program (`pulumi up`): provisions what batchflow workloads run on.

It reads the stack's settings (`stacks/Pulumi.<stack>.yaml` over the defaults in
`Pulumi.yaml`), refuses bad ones before declaring any resource, instantiates the
components of `batchflow/infra/` and exports the stack outputs the CLI consumes.
`batchflow infra plan --stack <stack>` runs this same file offline, under mocks.
"""

from __future__ import annotations

import pulumi

from batchflow.infra.config import StackConfigError
from batchflow.infra.environment import BatchEnvironment
from batchflow.infra.program import read_stack_config

try:
    config = read_stack_config()
except StackConfigError as exc:
    # RunError: Pulumi prints the message without a Python traceback.
    raise pulumi.RunError(str(exc)) from None

for warning in config.warnings:
    pulumi.log.warn(str(warning))
environment = BatchEnvironment(config.name_prefix, config)
for output_name, value in environment.stack_outputs.items():
    pulumi.export(output_name, value)
