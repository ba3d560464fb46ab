"""Kept only for the hidden tests of landscape, which still import their spy from here: the spies
live in hidden_tests/common.py. Delete this file once landscape imports from common."""

from hidden_tests.common import optimizers_created

__all__ = ["optimizers_created"]
