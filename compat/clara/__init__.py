"""Clara pipeline driver compatibility: `import clara` for operators written for Clara."""
