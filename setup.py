"""Maps the `aorta` namespace over shared/ and services/ (see ARCHITECTURE.md, "Layout")."""

from setuptools import find_packages, setup


def _packages(folder: str, prefix: str) -> list[str]:
    return [prefix] + [f"{prefix}.{name}" for name in find_packages(folder)]


setup(
    packages=_packages("shared", "aorta") + _packages("services", "aorta.services"),
    package_data={"aorta": ["py.typed"], "aorta.api": ["*.pyi", "**/*.pyi"]},
)
