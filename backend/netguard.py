"""Deprecated: the network guard is fakes.netguard (this alias goes in the next release)."""

from conventions.deprecation import alias_module

alias_module(__name__, "fakes.netguard")
