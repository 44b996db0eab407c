"""Decommission: take a workspace's private connectivity down in dependency order, keep what other
workspaces still use, and leave nothing billed behind (statemachine/decommission_workspace.asl.json)."""

from typing import Literal

# What a decommission does: detach (stop managing, delete nothing) or delete. Here, not in the store or the
# decommission's models, so that each can name it without loading the other.
DecommissionMode = Literal["detach", "delete"]
