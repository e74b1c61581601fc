"""Example bots and the demo that runs them against a real daemon."""
