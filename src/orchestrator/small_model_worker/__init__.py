"""Small worker models: back-ends (embedded MiniLM, transformers) and the confidence cascade."""
