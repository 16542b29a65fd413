"""The `aorta` command's entry point (filled in by the CLI)."""


def main() -> None:
    raise SystemExit("aorta: not built yet")
