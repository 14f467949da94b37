"""Live recognition: snippet clock, inference thread, sinks and stats over io/ sources."""
