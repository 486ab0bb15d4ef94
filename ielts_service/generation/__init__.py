"""What a question is and how one is made: items, validators, prompts, pools, model, bank."""
