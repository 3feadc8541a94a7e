"""relay as a service: a Segment-compatible collector, a durable queue, continuous delivery.

Modules, one job each::

    config      relay.yaml: validated like a preset, every error located, secrets from the environment
    limits      reading a hostile body: bounded, against a deadline, gzip inflated with a cap
    collector   Segment's HTTP API (/v1/batch, /v1/track, ...): answers 200 once events are durable
    queue       the embedded queue: SQLite in WAL mode, grouped fsynced commits, a cursor per destination
    watermark   the committed position: up to the lowest event whose outcome is not yet recorded
    fanout      one delivery loop per destination (run_stream), each with its own journal and pace
    kafka       scale-out: an idempotent acks=all producer, consumer groups, per-partition watermarks
    metrics     Prometheus metrics (prometheus-client)
    logs        structured logs
    ops         /health, /ready, /metrics and JSON errors everywhere
    app         wiring, uvicorn, shutdown
    demo        `relay demo --serve`: the service on local fakes, fed by the Segment SDK
"""
