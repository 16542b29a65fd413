"""The models service: the model repository (Triton model folders, catalogs, instances) and the
Triton pool that gives each job a server with the models its operators asked for.

It owns the `models`, `catalogs`, `instances`, `triton_servers`, `triton_claims`,
`triton_releases`, `triton_stops` and `models_replicas` collections and the blobs under
`models/`, and answers the Models RPCs the gateway forwards plus MODELS_ACQUIRE_TRITON,
MODELS_RELEASE_TRITON and MODELS_PLATFORM_STOP (see docs/models.md).
"""
