"""Decommission: take a workspace's private connectivity down in dependency order, keep what other
workspaces still use, and leave nothing billed behind (statemachine/decommission_workspace.asl.json)."""
