"""Prompt files as prompt editors write them (`files`), the prompts in use with hot reload
(`store`), and the editor's commands `prompts lint | render | try` (`tools`)."""

from ielts_service.questions.prompts.files import PromptError, PromptSet, load_prompts
from ielts_service.questions.prompts.store import PromptStore

__all__ = ["PromptError", "PromptSet", "PromptStore", "load_prompts"]
