"""World models: LeWM and the layers shared with the baselines."""
