import importlib.util
import os
import sys

# Make `import pacup` work from a plain checkout (no `pip install -e .`).
if importlib.util.find_spec("pacup") is None:  # pragma: no cover
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
