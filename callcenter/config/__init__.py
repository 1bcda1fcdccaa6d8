"""Configuration: typed, validated models loaded from YAML.

Every mistake is reported as ``FILE:LINE:COL: dotted.path: what was expected`` (the loader with
positions is :mod:`ivr.yamldoc`, shared with the dialplans). ``models`` holds one class per
section, ``checks`` the cross-field rules and warnings, ``load`` reads a file or the embedded
``default.yaml`` (the text the repository's ``config.yaml`` copies).
"""

from callcenter.config.checks import DEMO_PASSWORDS, DEMO_TOKENS, check_warnings
from callcenter.config.load import (
    DEFAULT_CONFIG_NAME,
    DEFAULT_CONFIG_YAML,
    apply_env,
    apply_overrides,
    load_config,
)
from callcenter.config.models import (
    ApiToken,
    AuthConfig,
    Campaign,
    CampaignRetry,
    Config,
    Disposition,
    EventsConfig,
    HttpConfig,
    LoggingConfig,
    MediaConfig,
    MqttConfig,
    Queue,
    QueueMember,
    RecordingConfig,
    RegistrationConfig,
    SipConfig,
    SupervisorConfig,
    Trunk,
    User,
)
from ivr.yamldoc import ConfigError, Mark, YamlDocument, load_yaml, validate_document

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_CONFIG_YAML",
    "DEMO_PASSWORDS",
    "DEMO_TOKENS",
    "ApiToken",
    "AuthConfig",
    "Campaign",
    "CampaignRetry",
    "Config",
    "ConfigError",
    "Disposition",
    "EventsConfig",
    "HttpConfig",
    "LoggingConfig",
    "Mark",
    "MediaConfig",
    "MqttConfig",
    "Queue",
    "QueueMember",
    "RecordingConfig",
    "RegistrationConfig",
    "SipConfig",
    "SupervisorConfig",
    "Trunk",
    "User",
    "YamlDocument",
    "apply_env",
    "apply_overrides",
    "check_warnings",
    "load_config",
    "load_yaml",
    "validate_document",
]
