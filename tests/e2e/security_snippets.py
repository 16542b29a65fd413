"""What the security end-to-end tests run elsewhere: the probe an attacking operator runs on
the host, and the flow NVIDIA's client runs over TLS with a token (in its own interpreter)."""

PROBE = """\
out=${{NVIDIA_CLARA_OUTPUTPATHS#*:}}; out=${{out%%;*}}
mkdir -p "$out"
attempt() {{ if sh -c "$2" >/dev/null 2>&1; then echo "$1: READ"; else echo "$1: refused"; fi; }}
{{
  echo "uid: $(id -u)"
  attempt shadow "cat /etc/shadow"
  attempt state "cat {data}/state.db"
  attempt blobs "ls {data}/blobs"
  attempt tokens "cat {data}/tokens.yaml"
  attempt admin-token "cat {data}/admin.token"
  echo "bus: $(python3 -c '{bus_probe}')"
  echo "secrets in environment: $(env | grep -c -e AORTA_ -e secret)"
}} > "$out/report.txt"
"""

BUS_PROBE = (
    "import socket;"
    's = socket.create_connection(("127.0.0.1", {port}), timeout=5);'
    "s.recv(4096);"
    's.sendall(b"CONNECT {{}}\\r\\n"'
    'b"PUB aorta.rpc.scheduler.platform_stop 2\\r\\n{{}}\\r\\nPING\\r\\n");'
    "reply = s.recv(4096).decode();"
    'print("refused" if "Authorization Violation" in reply else "OPEN " + reply.strip())'
)

NVIDIA_FLOW = """
import io, json, sys, time
import grpc
import nvidia_clara.pipeline_types as pipeline_types
from nvidia_clara.grpc import jobs_pb2_grpc, payloads_pb2_grpc, pipelines_pb2_grpc
from nvidia_clara.jobs_client import JobsClient
from nvidia_clara.payloads_client import PayloadsClient
from nvidia_clara.pipelines_client import PipelinesClient

target, ca, token, definition = sys.argv[1:5]
credentials = grpc.composite_channel_credentials(
    grpc.ssl_channel_credentials(open(ca, "rb").read()),
    grpc.access_token_call_credentials(token),
)
channel = grpc.secure_channel(target, credentials)
pipelines = PipelinesClient(target, stub=pipelines_pb2_grpc.PipelinesStub(channel))
jobs = JobsClient(target, stub=jobs_pb2_grpc.JobsStub(channel))
payloads = PayloadsClient(target, stub=payloads_pb2_grpc.PayloadsStub(channel))

definitions = [pipeline_types.PipelineDefinition(name="copy.yaml", content=definition)]
pipeline_id = pipelines.create_pipeline(definition=definitions)
job = jobs.create_job(job_name="tls-job", pipeline_id=pipeline_id)
payloads.upload(payload_id=job.payload_id, blob_name="scan.raw", file_object=io.BytesIO(b"scan"))
jobs.start_job(job_id=job.job_id)
deadline = time.monotonic() + 120
status = jobs.get_status(job_id=job.job_id)
while status.job_state != 3 and time.monotonic() < deadline:
    time.sleep(0.2)
    status = jobs.get_status(job_id=job.job_id)
sink = io.BytesIO()
payloads.download_from(
    payload_id=job.payload_id, blob_name="./operators/copy/scan.raw", dest_obj=sink
)
print(json.dumps({"state": status.job_state, "status": status.job_status,
                  "downloaded": sink.getvalue().decode()}))
"""

COPY_PIPELINE = """\
api-version: 0.4.0
name: copy
operators:
- name: copy
  container:
    image: busybox
    command: [sh, -c, 'out=${NVIDIA_CLARA_OUTPUTPATHS#*:}; inp=${NVIDIA_CLARA_INPUTPATHS#*:};
      mkdir -p "$out" && cp -r "$inp"/. "$out"/']
  input: [{path: /input}]
  output: [{path: /output}]
"""
