"""What a question is and how one is chosen: items, validators, topics, the bank, prompts, mock tests, the question service."""
