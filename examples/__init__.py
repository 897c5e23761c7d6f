"""Runnable examples of datalayer in use."""
