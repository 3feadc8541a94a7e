"""Delivery: send built requests, retry and rate-limit them, record every outcome.

``transport`` (the seam: one request, one response), ``retry`` (classification
and backoff from the preset's policy), ``ratelimit``, ``deliver`` (one event:
plan -> lookup -> build -> send), ``runner`` and ``stream`` (NDJSON streams with
per-contact order), ``journal`` (crash-safe outcomes and the dead letter) and
``checks`` (preflight).
"""
