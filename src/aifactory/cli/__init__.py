"""The `aifactory` command line, built on the SDK (it talks HTTP, never to the store)."""
