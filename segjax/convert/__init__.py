"""Weight import from other frameworks' checkpoint files."""
