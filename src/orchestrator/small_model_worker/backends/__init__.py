"""Small-model back-ends: each turns a prompt (and a JSON Schema) into generated text or JSON."""
