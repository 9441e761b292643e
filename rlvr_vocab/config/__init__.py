"""The config schema: structured configs of our own sections, their defaults and value specs."""
