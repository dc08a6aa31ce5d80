"""Offline evaluation, data-set readers and training: run by people, never imported at run time
(an import-linter contract) and not shipped in the image (.dockerignore)."""
