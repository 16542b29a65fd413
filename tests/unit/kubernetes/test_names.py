"""Pod and server names: DNS-1123 labels, deterministic, distinct for distinct runs."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from aorta.kubernetes import names

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
JOB = "3fd032fc6e1b4b0bb7b5bd9e3c5a4f21"

clara_names = st.from_regex(r"[A-Za-z0-9_-]{1,255}", fullmatch=True)


def test_a_short_name_reads_as_its_parts() -> None:
    assert names.pod_name(JOB, "Reader", 2) == f"aorta-{JOB}-reader-2"


def test_a_long_or_lossy_name_is_cut_and_hashed() -> None:
    long = names.pod_name(JOB, "segmentation-of-the-liver-and-its-tumours", 0)
    lossy = names.pod_name(JOB, "seg_a", 0)

    assert len(long) <= names.MAX_NAME and long != names.pod_name(JOB, "segmentation", 0)
    assert long.startswith(f"aorta-{JOB}-segmentation")
    assert DNS_LABEL.match(lossy)
    assert lossy != names.pod_name(JOB, "seg-a", 0)


@given(clara_names, st.integers(min_value=0, max_value=10_000))
def test_every_pod_name_is_a_dns_label_and_stable(operator: str, attempt: int) -> None:
    name = names.pod_name(JOB, operator, attempt)

    assert len(name) <= names.MAX_NAME and DNS_LABEL.match(name)
    assert name == names.pod_name(JOB, operator.upper(), attempt)  # Clara names ignore case


@given(clara_names, clara_names, st.integers(0, 3), st.integers(0, 3))
def test_distinct_runs_get_distinct_names(a: str, b: str, attempt_a: int, attempt_b: int) -> None:
    if (a.lower(), attempt_a) != (b.lower(), attempt_b):
        assert names.pod_name(JOB, a, attempt_a) != names.pod_name(JOB, b, attempt_b)


@given(st.text(min_size=0, max_size=300))
def test_label_values_are_valid_and_kept_when_already_valid(text: str) -> None:
    value = names.label_value(text)

    assert len(value) <= names.MAX_NAME and LABEL_VALUE.match(value)
    if len(text) <= names.MAX_NAME and LABEL_VALUE.match(text):
        assert value == text
    else:
        assert value != names.label_value(text + "x")


def test_selectors_list_every_label() -> None:
    labels = names.base_labels("aorta", names.OPERATOR_COMPONENT)

    assert names.selector(labels) == (
        "app.kubernetes.io/component=operator,app.kubernetes.io/instance=aorta,"
        "app.kubernetes.io/managed-by=aorta"
    )
