"""The monitor's pure logic: the latest GPU sample of every node."""
