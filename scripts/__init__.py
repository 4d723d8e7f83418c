"""The Lua scripts, shipped as package data so a wheel finds them as a checkout does."""
