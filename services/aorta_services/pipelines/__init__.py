"""The pipelines service: Clara pipeline definitions, validated, stored, described and listed.

It owns the `pipelines` collection and answers the Pipelines RPCs the gateway forwards, plus
PIPELINES_SNAPSHOT, through which the scheduler freezes a definition when a job is created.
"""
