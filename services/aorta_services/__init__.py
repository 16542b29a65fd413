"""The Aorta services: each one a process of its own, or all of them in `aorta up`."""
