"""The sandboxed expression language presets are written in.

JMESPath selector paths (``paths``), Jinja templates and expressions compiled in
one immutable sandbox (``templates``, ``sandbox``), and relay's closed list of
filters and tests (``filters``). The preset compiler is its only user; nothing
here knows what a preset is.
"""
