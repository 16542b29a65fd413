"""A server that answers Jobs.Status, Payloads.Details and Pipelines.Details with stored
messages and does nothing else: the most requests per second a read path can answer here.

`python -m bench.read_floor PORT ANSWERS` serves the answers in the JSON file ANSWERS (a list of
base64 serialized messages per method: one for Status, the stream's messages for the Details),
read once before the first call. No bus, no store, no checks: what clients get from it is the
ceiling of any gateway on this machine for those clients, against which `bench_status_load`
judges the platform's read paths.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

STATUS = ("nvidia.clara.platform.Jobs", "Status")
PAYLOAD_DETAILS = ("nvidia.clara.platform.Payloads", "Details")
PIPELINE_DETAILS = ("nvidia.clara.platform.Pipelines", "Details")


def method_key(service: str, method: str) -> str:
    """The key of a method's answers in the ANSWERS file."""
    return f"{service}/{method}"


def encode_answers(answers: dict[str, list[bytes]]) -> str:
    """The ANSWERS file's text for `answers` (serialized messages by `method_key`)."""
    return json.dumps(
        {key: [base64.b64encode(item).decode() for item in items] for key, items in answers.items()}
    )


def read_answers(answers_file: Path) -> dict[str, list[bytes]]:
    """The serialized messages an ANSWERS file holds, by `method_key`."""
    return {
        key: [base64.b64decode(item) for item in items]
        for key, items in json.loads(answers_file.read_text()).items()
    }


async def serve(port: int, stored: dict[str, list[bytes]]) -> None:
    (status,) = stored[method_key(*STATUS)]
    payload_details = stored[method_key(*PAYLOAD_DETAILS)]
    pipeline_details = stored[method_key(*PIPELINE_DETAILS)]

    async def answer_status(request: bytes, context: object) -> bytes:
        return status

    def streamed(messages: list[bytes]) -> grpc.RpcMethodHandler[bytes, bytes]:
        async def answer(request: bytes, context: object) -> AsyncIterator[bytes]:
            for message in messages:
                yield message

        return grpc.unary_stream_rpc_method_handler(answer)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                STATUS[0], {STATUS[1]: grpc.unary_unary_rpc_method_handler(answer_status)}
            ),
            grpc.method_handlers_generic_handler(
                PAYLOAD_DETAILS[0], {PAYLOAD_DETAILS[1]: streamed(payload_details)}
            ),
            grpc.method_handlers_generic_handler(
                PIPELINE_DETAILS[0], {PIPELINE_DETAILS[1]: streamed(pipeline_details)}
            ),
        ]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), read_answers(Path(sys.argv[2]))))
