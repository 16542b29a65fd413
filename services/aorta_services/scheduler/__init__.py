"""The scheduler service: owns jobs."""
