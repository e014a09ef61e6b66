"""Physical-understanding analyses of trained world models: violation of expectation and probing."""
