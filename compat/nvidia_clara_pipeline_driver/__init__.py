"""Clara pipeline driver compatibility: `python -m nvidia_clara_pipeline_driver.app`."""
