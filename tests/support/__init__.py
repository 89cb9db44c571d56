"""Helpers shared by the test suites: classes, functions and constants that tests import.

Fixtures stay in `conftest.py` files (which may import from here); no test imports a conftest
module. Each module is named by what it holds.
"""
