"""The runtime: backends, the feature ring, the glance pipeline and the Recognizer. Never imports torch."""
