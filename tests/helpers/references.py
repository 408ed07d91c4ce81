"""Skipping, with the reason, where a reference implementation cannot be imported."""

import importlib.util

import pytest


def require_official_sam():
  """Skips the calling test module (or test) unless torch and the official `segment_anything`
  are installed; returns torch. Call it before importing `official_sam` or
  `official_promptable`."""
  reason = "torch, the reference implementation, is not installed"
  torch = pytest.importorskip("torch", reason=reason)
  if importlib.util.find_spec("segment_anything") is None:
    pytest.skip("segment_anything, the reference, is not installed", allow_module_level=True)
  return torch
