"""The payloads service: PIPELINE and REUSABLE payloads, their files, metadata and state.

It owns the `payloads` and `payload_files` collections and answers the Payloads RPCs the
gateway forwards, the scheduler's verbs (PAYLOADS_CREATE_FOR_JOB, PAYLOADS_LOCK,
PAYLOADS_RELEASE, PAYLOADS_DISCARD_FOR_JOB, PAYLOADS_DELETE_FOR_JOB) and the gateway's verbs
around the bytes it streams (check_upload, file_added, locate). The blob store is the source of
truth of which files a payload holds.
"""
