"""Presets: load YAML with locations, validate against the schema, compile to a model.

``source`` (YAML with a pointer -> line:col map), ``schema`` (the preset schema
and request-body validators), ``settings``, the compile modules, and ``model``,
the frozen result every later stage reads.
"""
