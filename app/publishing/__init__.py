"""Offline to online: versioned writes of model data into ScyllaDB."""
