"""Exact, closed-form teaching labs (trust-region toy problems, GAE bias/variance)."""
