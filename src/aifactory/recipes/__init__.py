"""Workloads that run on the facility, with their own optional dependencies.

`aifactory.recipes.dutch_gpt` needs `aifactory[llm]` (PyTorch); the core never imports it.
`aifactory.recipes.data` holds the text the recipes ship with (see its README for licences).
"""
