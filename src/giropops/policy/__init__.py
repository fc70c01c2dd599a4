"""Policies a CI can gate on: each says pass, fail or no data, with the reason.

``load_config`` reads the YAML file that enables, disables and tunes them;
``evaluate`` runs them against one image.
"""

from giropops.policy.config import POLICY_NAMES, PolicyConfig, load_config
from giropops.policy.evaluate import PolicyResult, evaluate

__all__ = ["POLICY_NAMES", "PolicyConfig", "PolicyResult", "evaluate", "load_config"]
