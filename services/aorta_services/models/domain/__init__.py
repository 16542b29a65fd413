"""The models service's pure logic: what a stored model is, and Triton server placement."""
