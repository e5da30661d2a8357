"""The README's Python examples run as written, in order."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(monkeypatch):
    from optbench import registry

    # the README registers an optimizer: keep it out of the other tests
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README shows no Python example"
    namespace = {}  # the blocks read as one session: later ones use earlier names
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
