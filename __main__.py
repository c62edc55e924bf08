"""The Pulumi program (`pulumi up`): provisions what batchflow workloads run on.

The components live in `batchflow/infra/`; this file only reads the stack's config and
instantiates them. (The infrastructure issue fills it in.)
"""
