"""The only modules that import vendor SDKs. Each declares its factory on its capability:

    capability = Capability("adapters.ecs")

    @capability.adapter("ecs")
    def build(services) -> EcsAdapter: ...

and callers use `services.adapter("ecs")` (built once per process, lazily, from the registry).
"""
