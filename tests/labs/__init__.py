"""Servers the tests start on loopback (adapted from the team's verified lab recipes)."""
