"""The evaluation harness: the paper's protocol, the MPC loop, metrics and result files."""
