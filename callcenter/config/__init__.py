"""Configuration: typed, validated models loaded from YAML.

Every mistake is reported as ``FILE:LINE:COL: dotted.path: what was expected`` (the loader with
positions is :mod:`ivr.yamldoc`, shared with the dialplans). ``models`` holds one class per
section, ``checks`` the cross-field rules and warnings, ``load`` reads a file or the embedded
``default.yaml`` (the text the repository's ``config.yaml`` copies). The names below are the
ones imported from the package itself; the rest are imported from their submodule.
"""

from callcenter.config.checks import check_warnings
from callcenter.config.load import DEFAULT_CONFIG_YAML, apply_env, apply_overrides, load_config
from callcenter.config.models import (
    Campaign,
    CampaignRetry,
    Config,
    EventsConfig,
    MqttConfig,
    Queue,
    Trunk,
    User,
)
from ivr.yamldoc import ConfigError, load_yaml

__all__ = [
    "DEFAULT_CONFIG_YAML",
    "Campaign",
    "CampaignRetry",
    "Config",
    "ConfigError",
    "EventsConfig",
    "MqttConfig",
    "Queue",
    "Trunk",
    "User",
    "apply_env",
    "apply_overrides",
    "check_warnings",
    "load_config",
    "load_yaml",
]
