"""Sources of papers: drop files (``drops``) and feeds."""
