"""The embedded default: a tiny model and an arithmetic data set built locally, nothing downloaded."""
