"""Drift: CloudTrail events and a scheduled scan say "look at workspace X"; the reconciler repairs it."""
