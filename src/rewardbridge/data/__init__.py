"""Examples (prompts with references), judge items, and their loaders."""

from rewardbridge.data.example import Example, JudgeItem

__all__ = ["Example", "JudgeItem"]
