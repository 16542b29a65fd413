"""Maps the `aorta` namespace over shared/ and services/ (see ARCHITECTURE.md, "Layout").

`compat/` holds the top-level `clara` and `nvidia_clara_pipeline_driver` packages, so operator
scripts written for Clara's pipeline driver import and run unchanged.
"""

from setuptools import find_packages, setup


def _packages(folder: str, prefix: str) -> list[str]:
    return [prefix] + [f"{prefix}.{name}" for name in find_packages(folder)]


setup(
    packages=_packages("shared", "aorta")
    + _packages("services", "aorta.services")
    + ["clara", "nvidia_clara_pipeline_driver"],
    package_dir={
        "aorta": "shared",
        "aorta.services": "services",
        "clara": "compat/clara",
        "nvidia_clara_pipeline_driver": "compat/nvidia_clara_pipeline_driver",
    },
    package_data={"aorta": ["py.typed"], "aorta.api": ["*.pyi"]},
)
