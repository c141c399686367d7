"""The software jobs run in besides the host's: Python environments the facility builds
(`envbuild`) and OCI images an operator imports (`images`), kept under `Settings.software_dir`
by content (an environment's key, an image's digest), read-only once made."""
