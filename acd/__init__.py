"""The ACD: queues, agents, strategies, statistics and a discrete-event simulator (pure)."""

from acd.config import AgentConfig, InvalidSetting, Membership, QueueConfig
from acd.engine import AcdEngine, AcdError, AgentStats, QueueStats
from acd.states import AgentState
from acd.strategies import STRATEGIES, Strategy, register

__all__ = [
    "STRATEGIES", "AcdEngine", "AcdError", "AgentConfig", "AgentState", "AgentStats",
    "InvalidSetting", "Membership", "QueueConfig", "QueueStats", "Strategy", "register",
]
