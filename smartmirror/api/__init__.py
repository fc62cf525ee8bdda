"""The REST API: the app factory (``app``), its settings, per-client sessions and the routers (``routes/``)."""
