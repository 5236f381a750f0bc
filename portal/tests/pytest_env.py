"""Loaded with ``-p`` before pytest-django reads the settings: tests run in development mode.

Production settings are exercised in a subprocess (portal/tests/test_operations.py).
"""

import os

os.environ.setdefault("DEBUG", "1")
