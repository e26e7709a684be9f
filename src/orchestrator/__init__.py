"""orchestrator: a large model plans, small models work."""
