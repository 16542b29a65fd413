"""`Payloads.Details` of a payload with more files than a page of records: every file once, in
name order, each with its own record or its executor's checksum, the records read a page at a
time as the listing goes and one manifest held at a time."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator
from contextlib import aclosing

from aorta.ids import PayloadId
from aorta.runtime import ServiceContext
from aorta.store.paging import PAGE_SIZE
from aorta_services.payloads.contents import PayloadContents
from aorta_services.payloads.described_files import described_files
from aorta_services.payloads.domain import FileRecord
from aorta_services.payloads.repository import PayloadRepository
from tests.unit.payloads.payload_calls import JOB, Calls

# Names whose code point order is not their case-blind or accent-blind order.
UPLOADED = sorted(
    [f"f{n:04}.dat" for n in range(PAGE_SIZE * 2 + 5)] + ["B.txt", "a.txt", "é.txt", "z/é"]
)
OUTPUTS = {
    "seg": {"mask.nii": b"mask!", "deep/r.txt": b"r"},
    "stats": {"table.csv": b"1,2\n"},
}


def line(data: bytes, name: str) -> list[str]:
    return [f"sha256 {hashlib.sha256(data).hexdigest()} {name}"]


async def _filled(calls: Calls) -> str:
    payload_id = await calls.for_job(JOB, [])
    for name in UPLOADED:
        await calls.upload(payload_id, name, name.encode())
    for operator, files in OUTPUTS.items():
        await calls.push_output(payload_id, operator, files)
    await calls.put_output(payload_id, "operators/seg/stray.txt", b"no manifest names it")
    return payload_id


async def test_every_file_is_listed_once_with_its_checksum(calls: Calls) -> None:
    payload_id = await _filled(calls)

    found = await calls.details(payload_id)

    outputs = sorted(
        (f"/operators/{operator}/{name}", data)
        for operator, files in OUTPUTS.items()
        for name, data in files.items()
    )
    expected = [(f"/input/{n}", line(n.encode(), f"/input/{n}")) for n in UPLOADED]
    expected += [(name, line(data, name)) for name, data in outputs]
    expected.insert(-1, ("/operators/seg/stray.txt", []))
    assert [(d.file.name, list(d.header.messages)) for d in found] == expected


class CountedRepository(PayloadRepository):
    """Counts the pages of file records read so far."""

    pages_read = 0

    async def file_pages(self, payload_id: PayloadId) -> AsyncGenerator[list[FileRecord], None]:
        pages = super().file_pages(payload_id)
        async with aclosing(pages):
            async for page in pages:
                self.pages_read += 1
                yield page


async def test_records_are_read_a_page_at_a_time_as_the_listing_goes(
    calls: Calls, context: ServiceContext
) -> None:
    payload_id = PayloadId(await _filled(calls))
    repository = CountedRepository(context.store)

    files = described_files(payload_id, PayloadContents(context.blobs), repository)
    async with aclosing(files):
        first, known = await anext(files)
        assert repository.pages_read == 1
        rest = [item async for item in files]

    assert first.name == f"input/{UPLOADED[0]}" and known is not None
    assert repository.pages_read == 3  # of 100, 100 and 9 records
    assert len(rest) == len(UPLOADED) + 3
