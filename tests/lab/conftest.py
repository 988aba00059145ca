"""pytest setup for the lab probes: labconf importable, artifacts directory ready."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labconf  # noqa: E402

os.makedirs(labconf.ARTIFACTS, exist_ok=True)
