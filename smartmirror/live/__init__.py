"""The live mirror: the engine's threads over one frame buffer, the latest-state store and the session clock."""
