"""Tools for people who write presets: goldens, generated docs, scaffolding, a pytest plugin."""
