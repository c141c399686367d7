"""A recipe job on a facility set up without PyTorch (`make run`) says how to add it."""

from __future__ import annotations

import subprocess
import sys

# torch as if it were not installed: an import of it fails as a missing module's would
WITHOUT_TORCH = (
    "import sys; sys.modules['torch'] = None; "
    "from aifactory.recipes.dutch_gpt.__main__ import main; sys.exit(main(['pretrain']))"
)


def test_a_recipe_without_torch_names_the_command_that_adds_it() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 3
    assert "Traceback" not in ran.stderr
    assert "make llm" in ran.stderr
    assert f"{sys.executable} -m pip install -e '.[llm]'" in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1
